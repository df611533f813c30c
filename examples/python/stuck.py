"""stuck.py — a script that never checks for cancellation; `python -m ctx`
stops it anyway (timeout: exit 124, Ctrl-C: exit 130)."""
n = 0
while True:
    n += 1
