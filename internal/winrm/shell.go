package winrm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	mz "github.com/masterzen/winrm"
)

// deleteTimeout bounds the shell delete and the terminate signal, which run
// on a fresh context so that a cancelled poll still frees its shell.
const deleteTimeout = 10 * time.Second

// runCommand runs one command in a new cmd shell: Create, Command, Receive
// until done, and always Delete. stdout and stderr must never fail (they
// are capped writers). A run whose context ended is an error.
func (t *transport) runCommand(ctx context.Context, host string, params *mz.Parameters, command string, stdout, stderr io.Writer) (exitCode int, err error) {
	url := t.url(host)
	msg := mz.NewOpenShellRequest(url, params)
	env, err := t.post(ctx, host, msg.String())
	msg.Free()
	if err != nil {
		return 0, fmt.Errorf("create shell: %w", err)
	}
	if env.ShellID == "" {
		return 0, fmt.Errorf("create shell: %w: the answer has no shell id", ErrProtocol)
	}
	shellID := env.ShellID
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
		del := mz.NewDeleteShellRequest(url, shellID, params)
		_, derr := t.post(dctx, host, del.String())
		del.Free()
		if derr != nil && err == nil && !errors.Is(derr, ErrShellNotFound) {
			err = fmt.Errorf("delete shell (it stays open until the host's idle timeout; repeated, this exhausts MaxShellsPerUser): %w", derr)
		}
	}()

	msg = mz.NewExecuteCommandRequest(url, shellID, command, nil, params)
	env, err = t.post(ctx, host, msg.String())
	msg.Free()
	if err != nil {
		return 0, fmt.Errorf("command: %w", err)
	}
	if env.CommandID == "" {
		return 0, fmt.Errorf("command: %w: the answer has no command id", ErrProtocol)
	}
	commandID := env.CommandID

	for {
		if ctx.Err() != nil {
			t.terminate(ctx, host, params, shellID, commandID)
			return 0, fmt.Errorf("receive: %w", ctxError(ctx))
		}
		msg = mz.NewGetOutputRequest(url, shellID, commandID, "stdout stderr", params)
		env, err = t.post(ctx, host, msg.String())
		msg.Free()
		if errors.Is(err, errOperationTimeout) {
			continue // no output within OperationTimeout: ask again
		}
		if err != nil {
			if ctx.Err() != nil {
				t.terminate(ctx, host, params, shellID, commandID)
				return 0, fmt.Errorf("receive: %w", ctxError(ctx))
			}
			return 0, fmt.Errorf("receive: %w", err)
		}
		got := 0
		for _, s := range env.Streams {
			if s.CommandID != "" && s.CommandID != commandID {
				return 0, fmt.Errorf("receive: %w: output for command %s, not %s", ErrProtocol, sanitize(s.CommandID, 40), commandID)
			}
			got += len(s.Data)
			switch s.Name {
			case "stdout":
				_, _ = stdout.Write(s.Data)
			case "stderr":
				_, _ = stderr.Write(s.Data)
			}
		}
		if cw, ok := stdout.(*capWriter); ok && cw.dropped > 0 {
			t.terminate(ctx, host, params, shellID, commandID)
			return 0, fmt.Errorf("receive: %w: more than %d bytes of output (winrm.max_output_bytes)", ErrOutputTooLarge, cw.max)
		}
		if env.Done {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("receive: %w", ctxError(ctx))
			}
			return env.ExitCode, nil
		}
		if got == 0 {
			// An empty "still running" answer: pause instead of spinning.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// terminate asks the host to stop the command (best effort, fresh context).
func (t *transport) terminate(ctx context.Context, host string, params *mz.Parameters, shellID, commandID string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	msg := mz.NewSignalRequest(t.url(host), shellID, commandID, params)
	_, _ = t.post(sctx, host, msg.String())
	msg.Free()
}

// capWriter keeps the first max bytes and counts the rest. It never returns
// an error: a failing writer would stall the receive loop.
type capWriter struct {
	buf     []byte
	max     int
	dropped int64
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.max - len(w.buf)
	if room >= len(p) {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		w.buf = append(w.buf, p[:room]...)
	}
	w.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}
