"""Tests of engine.interfaces."""
