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
	shellID, err := t.createShell(ctx, host, params)
	if err != nil {
		return 0, err
	}
	defer func() {
		if derr := t.deleteShell(ctx, host, params, shellID); derr != nil && err == nil {
			err = derr
		}
	}()
	commandID, err := t.startCommand(ctx, host, params, shellID, command)
	if err != nil {
		return 0, err
	}
	return t.receiveAll(ctx, host, params, shellID, commandID, stdout, stderr)
}

// receiveAll receives until the command is done and returns its exit code.
func (t *transport) receiveAll(ctx context.Context, host string, params *mz.Parameters, shellID, commandID string, stdout, stderr io.Writer) (exitCode int, err error) {
	for {
		r, err := t.receive(ctx, host, params, shellID, commandID, stdout, stderr)
		if err != nil {
			return 0, err
		}
		if r.done {
			return r.exit, nil
		}
	}
}

// createShell opens a cmd shell and returns its id.
func (t *transport) createShell(ctx context.Context, host string, params *mz.Parameters) (string, error) {
	msg := mz.NewOpenShellRequest(t.url(host), params)
	env, err := t.post(ctx, host, msg.String())
	msg.Free()
	if err != nil {
		return "", fmt.Errorf("create shell: %w", err)
	}
	if env.ShellID == "" {
		return "", fmt.Errorf("create shell: %w: the answer has no shell id", ErrProtocol)
	}
	return env.ShellID, nil
}

// deleteShell deletes a shell on a fresh context bounded by deleteTimeout.
// A shell the host no longer knows is not an error.
func (t *transport) deleteShell(ctx context.Context, host string, params *mz.Parameters, shellID string) error {
	return t.deleteShellWithin(ctx, host, params, shellID, deleteTimeout)
}

// deleteShellWithin is deleteShell bounded by budget instead of
// deleteTimeout (Close spends what is left of its own deadline).
func (t *transport) deleteShellWithin(ctx context.Context, host string, params *mz.Parameters, shellID string, budget time.Duration) error {
	if budget <= 0 {
		return fmt.Errorf("delete shell (it stays open until the host's idle timeout): %w: no time left", ErrTimeout)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	del := mz.NewDeleteShellRequest(t.url(host), shellID, params)
	_, err := t.post(dctx, host, del.String())
	del.Free()
	if err != nil && !errors.Is(err, ErrShellNotFound) {
		return fmt.Errorf("delete shell (it stays open until the host's idle timeout; repeated, this exhausts MaxShellsPerUser): %w", err)
	}
	return nil
}

// startCommand runs command in the shell and returns the command id.
func (t *transport) startCommand(ctx context.Context, host string, params *mz.Parameters, shellID, command string) (string, error) {
	msg := mz.NewExecuteCommandRequest(t.url(host), shellID, command, nil, params)
	env, err := t.post(ctx, host, msg.String())
	msg.Free()
	if err != nil {
		return "", fmt.Errorf("command: %w", err)
	}
	if env.CommandID == "" {
		return "", fmt.Errorf("command: %w: the answer has no command id", ErrProtocol)
	}
	return env.CommandID, nil
}

// send writes input to the command's stdin (eof closes it).
func (t *transport) send(ctx context.Context, host string, params *mz.Parameters, shellID, commandID string, input []byte, eof bool) error {
	msg := mz.NewSendInputRequest(t.url(host), shellID, commandID, input, eof, params)
	_, err := t.post(ctx, host, msg.String())
	msg.Free()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("send: %w", ctxError(ctx))
		}
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// received is what one successful Receive gave.
type received struct {
	done bool // the command finished (exit is its code)
	exit int
	n    int // stdout and stderr bytes in this answer
}

// receive asks for output once, keeping on through TimedOut answers (no
// output within the OperationTimeout), and writes the streams. On a context
// end or too much output it terminates the command (best effort). An empty
// "still running" answer is followed by a short pause.
func (t *transport) receive(ctx context.Context, host string, params *mz.Parameters, shellID, commandID string, stdout, stderr io.Writer) (received, error) {
	for {
		if ctx.Err() != nil {
			t.terminate(ctx, host, params, shellID, commandID)
			return received{}, fmt.Errorf("receive: %w", ctxError(ctx))
		}
		msg := mz.NewGetOutputRequest(t.url(host), shellID, commandID, "stdout stderr", params)
		env, err := t.post(ctx, host, msg.String())
		msg.Free()
		if errors.Is(err, errOperationTimeout) {
			continue // no output within OperationTimeout: ask again
		}
		if err != nil {
			if ctx.Err() != nil {
				t.terminate(ctx, host, params, shellID, commandID)
				return received{}, fmt.Errorf("receive: %w", ctxError(ctx))
			}
			return received{}, fmt.Errorf("receive: %w", err)
		}
		var r received
		for _, s := range env.Streams {
			if s.CommandID != "" && s.CommandID != commandID {
				return received{}, fmt.Errorf("receive: %w: output for command %s, not %s", ErrProtocol, sanitize(s.CommandID, 40), commandID)
			}
			r.n += len(s.Data)
			switch s.Name {
			case "stdout":
				_, _ = stdout.Write(s.Data)
			case "stderr":
				_, _ = stderr.Write(s.Data)
			}
		}
		if cw, ok := stdout.(*capWriter); ok && cw.dropped > 0 {
			t.terminate(ctx, host, params, shellID, commandID)
			return received{}, fmt.Errorf("receive: %w: more than %d bytes of output (winrm.max_output_bytes)", ErrOutputTooLarge, cw.max)
		}
		if env.Done {
			if ctx.Err() != nil {
				return received{}, fmt.Errorf("receive: %w", ctxError(ctx))
			}
			r.done, r.exit = true, env.ExitCode
			return r, nil
		}
		if r.n == 0 {
			// An empty "still running" answer: pause instead of spinning.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		return r, nil
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
