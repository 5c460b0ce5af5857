"""The lobby and game server: run it with ``python -m {{ cookiecutter.package_name }}``."""
