//! Restrictions generated from a Tracefile: a Docker seccomp profile and capability options.
