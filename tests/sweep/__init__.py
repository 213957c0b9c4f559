"""Tests of engine.sweep."""
