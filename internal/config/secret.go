package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSecretBytes bounds a secret file: tokens and passwords are short.
const maxSecretBytes = 64 << 10

// ReadSecret returns the secret held in the environment variable envName or
// in the file fileName (exactly one of them should be set). A file's trailing
// newline is trimmed. Errors name the variable or file, never the value.
func ReadSecret(envName, fileName string) (string, error) {
	switch {
	case envName != "" && fileName != "":
		return "", errors.New("config: secret: both an environment variable and a file are given; configure one")
	case envName != "":
		val, ok := os.LookupEnv(envName)
		if !ok {
			return "", fmt.Errorf("config: secret: environment variable %s is not set; export it in svcwatch's environment (or use the *_file key)", envName)
		}
		if strings.TrimSpace(val) == "" {
			return "", fmt.Errorf("config: secret: environment variable %s is empty; set it to the secret", envName)
		}
		return val, nil
	case fileName != "":
		f, err := os.Open(fileName)
		if err != nil {
			return "", fmt.Errorf("config: secret: %w; create the file or fix the *_file path (it must be readable by svcwatch's user)", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
		if err != nil {
			return "", fmt.Errorf("config: secret: reading %s: %w", fileName, err)
		}
		if len(b) > maxSecretBytes {
			return "", fmt.Errorf("config: secret: %s is larger than %d bytes; it should hold only the secret", fileName, maxSecretBytes)
		}
		val := strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(val) == "" {
			return "", fmt.Errorf("config: secret: %s is empty; write the secret into it", fileName)
		}
		return val, nil
	}
	return "", errors.New("config: secret: none configured; set the *_env or *_file key")
}

// Secrets are the credentials a Config refers to, read by ReadSecrets. Its
// String and GoString never show the values, so logging it is harmless.
type Secrets struct {
	LDAPPassword    string // directory.bind.password_env / _file ("" when not configured)
	WinRMPassword   string // winrm.password_env / _file
	SlackToken      string // slack.token_env / _file
	SlackWebhookURL string // slack.webhook_url_env / _file
}

// Slack is the Slack secret the configuration names: the bot token, or
// else the incoming webhook URL ("" when Slack is not configured).
func (s Secrets) Slack() string { return cmp.Or(s.SlackToken, s.SlackWebhookURL) }

func (s Secrets) String() string {
	mark := func(v string) string {
		if v == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("{LDAPPassword:%s WinRMPassword:%s SlackToken:%s SlackWebhookURL:%s}",
		mark(s.LDAPPassword), mark(s.WinRMPassword), mark(s.SlackToken), mark(s.SlackWebhookURL))
}

func (s Secrets) GoString() string { return "config.Secrets" + s.String() }

// LogValue keeps slog from reflecting over the fields: a JSON handler
// marshals a plain struct field by field, values included.
func (s Secrets) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON renders the redacted form, never the values.
func (s Secrets) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", s.String())), nil }

// ReadSecrets reads every secret c configures, and reports every one that
// cannot be read (joined). Call it at start and on reload, after Load.
func (c *Config) ReadSecrets() (Secrets, error) {
	var s Secrets
	var errs []error
	read := func(key, env, file string, dst *string) {
		if env == "" && file == "" {
			return
		}
		v, err := ReadSecret(env, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		*dst = v
	}
	if c.Directory.Enabled() {
		read("directory.bind.password", c.Directory.Bind.PasswordEnv, c.Directory.Bind.PasswordFile, &s.LDAPPassword)
	}
	read("winrm.password", c.WinRM.PasswordEnv, c.WinRM.PasswordFile, &s.WinRMPassword)
	read("slack.token", c.Slack.TokenEnv, c.Slack.TokenFile, &s.SlackToken)
	read("slack.webhook_url", c.Slack.WebhookURLEnv, c.Slack.WebhookURLFile, &s.SlackWebhookURL)
	return s, errors.Join(errs...)
}

// redactedValue replaces a *_env value that is not a variable name: such a
// value may be the secret itself, pasted in by mistake.
const redactedValue = "REDACTED"

// String renders c as YAML that Parse accepts (durations as "5m0s"), with any
// *_env value that is not an environment variable name redacted. The Config
// holds no secret values, only where to find them.
func (c *Config) String() string {
	cp := *c
	for _, p := range []*string{&cp.Directory.Bind.PasswordEnv, &cp.WinRM.PasswordEnv, &cp.Slack.TokenEnv, &cp.Slack.WebhookURLEnv} {
		if *p != "" && !envNameRE.MatchString(*p) {
			*p = redactedValue
		}
	}
	b, err := yaml.Marshal(&cp)
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}
