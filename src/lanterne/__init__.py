"""Lanterne: detects situations, never identities."""
