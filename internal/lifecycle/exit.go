package lifecycle

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wallet/wallet/internal/config"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

// Exit ends a main with err's status: 0 for nil or --help (printing the
// settings to stdout), 2 for invalid configuration, 1 for anything else. The
// error is one line on stderr, prefixed with the program's name.
func Exit(p config.Program, err error) {
	os.Exit(report(p, err, os.Stdout, os.Stderr))
}

func report(p config.Program, err error, stdout, stderr io.Writer) int {
	var cfgErr *config.Error
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, config.ErrHelp):
		_, _ = fmt.Fprint(stdout, config.Usage(p))
		return exitOK
	case errors.As(err, &cfgErr), errors.Is(err, errConfig):
		fmt.Fprintf(stderr, "%s: %v\n", p, err)
		return exitConfig
	default:
		fmt.Fprintf(stderr, "%s: %v\n", p, err)
		return exitFailed
	}
}

// errConfig marks configuration errors that are not a *config.Error (an
// unknown flag, say), so Exit gives them the configuration status.
var errConfig = errors.New("invalid configuration")

// LoadConfig loads program p's configuration from args and the process
// environment. Its errors carry the configuration exit status.
func LoadConfig(p config.Program, args []string) (*config.Config, error) {
	c, err := config.Load(p, args, os.LookupEnv)
	if err != nil && !errors.Is(err, config.ErrHelp) {
		var cfgErr *config.Error
		if !errors.As(err, &cfgErr) {
			return nil, configError{err}
		}
		return nil, err
	}
	return c, err
}

// configError keeps the message of a configuration error while marking it.
type configError struct{ err error }

func (e configError) Error() string   { return e.err.Error() }
func (e configError) Unwrap() []error { return []error{e.err, errConfig} }
