package cputime

import (
	"time"

	"golang.org/x/sys/unix"
)

func process() (time.Duration, bool) { return usage(unix.RUSAGE_SELF) }

func thread() (time.Duration, bool) { return usage(unix.RUSAGE_THREAD) }

func usage(who int) (time.Duration, bool) {
	var ru unix.Rusage
	if unix.Getrusage(who, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
