package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/svcwatch/svcwatch/internal/config"
)

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("svcwatch "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args; -h is not an error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitError{code: exitOK}
		}
		return exitError{code: exitSetup}
	}
	return nil
}

// configFlags parses args of a command that takes --config FILE (and maybe
// positional arguments, left in the returned flag set) and loads the file.
func configFlags(name string, args []string, stderr io.Writer) (*flag.FlagSet, *config.Config, error) {
	fs := newFlags(name, stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(*path)
	return fs, cfg, err
}

// readSecrets reads every secret cfg names; a missing one is a setup error.
func readSecrets(cfg *config.Config) (config.Secrets, error) {
	s, err := cfg.ReadSecrets()
	if err != nil {
		return s, exitError{code: exitSetup, err: oneLine(err)}
	}
	return s, nil
}

// loadConfig loads and validates the --config file; any problem is a setup error.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, exitError{code: exitSetup, err: fmt.Errorf("--config FILE is required (start from config/svcwatch.example.yaml)")}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, exitError{code: exitSetup, err: oneLine(err)}
	}
	return cfg, nil
}

// oneLine joins a multi-error into "first; second; ..." so a broken config
// is reported on one line, as the README promises.
func oneLine(err error) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ; ")), " ")
	return fmt.Errorf("%s", msg)
}

// newLogger builds the structured logger the config asks for.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Log.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// isTerminal reports whether w is an interactive terminal (for progress lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
