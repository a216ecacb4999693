"""Recognising failed logins in log text: signatures, timestamps, and the one-pass engine."""
