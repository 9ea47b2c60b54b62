package main

import (
	"fmt"

	"github.com/imgpipe/imgpipe/internal/fail"
)

func usageErrorf(format string, args ...any) error {
	return fail.Usage(fmt.Errorf(format, args...))
}
