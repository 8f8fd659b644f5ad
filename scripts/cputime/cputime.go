// Package cputime reads the CPU time of the process and of the calling
// thread, for benchmarks that report work per CPU second: on a busy,
// shared machine CPU time is inflated less than wall time. It is for
// tests and measurement scripts, not for the commands.
package cputime

import "time"

// Process returns the user and system CPU time of the process so far, all
// threads, and whether the system reports it.
func Process() (time.Duration, bool) { return process() }

// Thread returns the user and system CPU time of the calling thread (lock
// it with runtime.LockOSThread), and whether the system reports it.
func Thread() (time.Duration, bool) { return thread() }
