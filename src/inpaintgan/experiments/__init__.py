"""Experiment runners: scripts that reproduce a report's numbers and figures from model files."""
