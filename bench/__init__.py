"""`make bench`: guestcard's figures beside the physical floor measured in the same run (docs/benchmarks.md)."""
