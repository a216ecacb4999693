"""The admin's live views of the ledger: ``bruteguard dashboard`` (web) and ``top`` (terminal).

Both read the store and the daemon's status (never the detector's state) through one
``snapshot`` module, and act only through the control socket, as ``bruteguard ban`` does.
"""
