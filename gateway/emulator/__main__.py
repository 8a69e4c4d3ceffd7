"""Entry point of `python -m gateway.emulator`."""

from gateway.emulator import main

main()
