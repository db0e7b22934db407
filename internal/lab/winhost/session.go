package winhost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SessionBootstrap is the -Command text of the persistent collector
// (protocol v2, docs/internals.md): read one base64 line from stdin, decode
// it as UTF-8 and run it. It is a constant on both sides; the lab runs the
// session only for this exact text.
const SessionBootstrap = `$l=[Console]::In.ReadLine();if($l){iex ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($l)))}`

// CollectorMarkerV2 is the first line of the persistent collector's script.
const CollectorMarkerV2 = "# svcwatch-collector v2"

// Bounds of the lines a session reads.
const (
	maxScriptLine  = 1 << 20
	maxRequestLine = 256
)

// requestRE is the v2 request line: W D N B, exactly as the script checks it.
var requestRE = regexp.MustCompile(`^([0-9]{1,19}) ([0-9a-f]{64}|0) ([0-9]{1,5}) ([0-9]{1,8})$`)

// RequestLine renders r as the v2 request line (no newline).
func (r CollectRequest) RequestLine() string {
	return fmt.Sprintf("%d %s %d %d", r.Watermark, r.Digest, r.MaxEvents, r.Lookback)
}

// ParseRequestLine checks one v2 request line as the script does.
func ParseRequestLine(line string) (CollectRequest, error) {
	m := requestRE.FindStringSubmatch(line)
	if m == nil {
		return CollectRequest{}, errors.New("svcwatch-collector: bad request line")
	}
	w, err := strconv.ParseInt(m[1], 10, 64) // the script reads [long]
	if err != nil {
		return CollectRequest{}, errors.New("svcwatch-collector: bad request line")
	}
	n, _ := strconv.Atoi(m[3])
	b, _ := strconv.ParseInt(m[4], 10, 64)
	if n < 1 || n > MaxEvents || b > MaxLookback {
		return CollectRequest{}, errors.New("svcwatch-collector: request out of range")
	}
	return CollectRequest{Watermark: uint64(w), Digest: m[2], MaxEvents: n, Lookback: b}, nil
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line without its "\r\n" or "\n"; io.EOF only when
// nothing was read. The last line needs no newline.
func readLine(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(b)+len(frag) > max+2 {
			return "", errLineTooLong
		}
		b = append(b, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && (err != io.EOF || len(b) == 0) {
			return "", err
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
}

// session is the persistent collector: the bootstrap reads the script from
// stdin, the script then answers one request line at a time until stdin
// ends. Faults set between requests apply to the next answer.
func (h *Host) session(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	br := bufio.NewReaderSize(stdin, 4096)
	first, err := readLine(br, maxScriptLine)
	if ctx.Err() != nil {
		return 1, ctx.Err()
	}
	if err == io.EOF || (err == nil && first == "") {
		return 0, nil // if($l){...}: nothing to run
	}
	if err != nil {
		writeCLIXMLError(stderr, "Exception calling \"ReadLine\" with \"0\" argument(s): \""+err.Error()+"\"")
		return 1, nil
	}
	raw, err := base64.StdEncoding.DecodeString(first)
	if err != nil {
		writeCLIXMLError(stderr, `Exception calling "FromBase64String" with "1" argument(s): "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters. "`)
		return 1, nil
	}
	script := string(bytes.ToValidUTF8(raw, []byte(string(utf8.RuneError))))
	head, _, _ := strings.Cut(script, "\n")
	if strings.TrimSuffix(head, "\r") != CollectorMarkerV2 {
		writeCLIXMLError(stderr, fmt.Sprintf("svcwatch collector: the script does not start with %q", CollectorMarkerV2))
		return 1, nil
	}
	for {
		line, err := readLine(br, maxRequestLine)
		if ctx.Err() != nil {
			return 1, ctx.Err()
		}
		if err == io.EOF {
			return 0, nil // stdin closed: the session ends
		}
		if err != nil {
			io.WriteString(stderr, "svcwatch-collector: bad request line\r\n")
			return 1, nil
		}
		req, perr := ParseRequestLine(line)
		if perr != nil {
			io.WriteString(stderr, perr.Error()+"\r\n")
			return 1, nil
		}
		exit, done, err := h.answerRequest(ctx, req, stdout)
		if err != nil || done {
			return exit, err
		}
	}
}

// answerRequest answers one v2 request with the fault in force now. done
// reports that the process ends (the truncated fault dies mid-answer).
func (h *Host) answerRequest(ctx context.Context, req CollectRequest, stdout io.Writer) (exit int, done bool, err error) {
	h.mu.Lock()
	h.runs++
	h.collects++
	fault := h.fault
	delay := h.opts.SlowDelay
	h.mu.Unlock()
	switch fault {
	case FaultSlow:
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return 1, true, ctx.Err()
		case <-t.C:
		}
	case FaultGarbage:
		_, err := io.WriteString(stdout, garbageOutput)
		return 0, err != nil, err
	case FaultHuge:
		exit, err := h.writeHuge(ctx, stdout)
		return exit, err != nil, err
	}
	out := h.Answer(req)
	if fault == FaultTruncated {
		_, err := stdout.Write(out[:len(out)/2])
		return 0, true, err
	}
	if _, err := stdout.Write(append(out, '\n')); err != nil {
		return 1, true, err
	}
	return 0, false, nil
}
