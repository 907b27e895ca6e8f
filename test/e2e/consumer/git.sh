#!/bin/sh
# git.sh is the end-to-end test's stand-in for a workload's init container
# (registry.example/git:2.45): it prints its arguments and succeeds.
echo "git (stand-in): $*"
