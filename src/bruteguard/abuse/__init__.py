"""The abuse desk: who runs the network an attacker came from, and how to reach them.

Every value here comes from registry replies an attacker's network can write into, so
nothing leaves this package unvalidated.
"""
