"""Scenario suites: each scenario written once against the Cluster interface, run on sim, local or lab."""
