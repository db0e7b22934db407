package slacksink

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Slack's documented Block Kit and message limits, enforced so that tests
// catch a renderer that would be rejected by the real service.
const (
	MaxBlocks        = 50    // blocks per message
	MaxTextObject    = 3000  // characters in a section or context text object
	MaxSectionField  = 2000  // characters in one section field
	MaxSectionFields = 10    // fields per section
	MaxHeaderText    = 150   // characters in a header's plain_text
	MaxContextElems  = 10    // elements per context block
	MaxBlockID       = 255   // characters in a block_id
	MaxMessageText   = 40000 // characters in the top-level text
)

// Length counts characters the way Slack's limits do (UTF-16 code units, as
// JavaScript does); for text outside the BMP this is stricter than runes.
func Length(s string) int {
	n := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// blockError is one violation with the JSON pointer Slack would report.
type blockError struct {
	pointer string
	problem string
}

func (e blockError) String() string {
	return fmt.Sprintf("[ERROR] %s [json-pointer:%s]", e.problem, e.pointer)
}

// textObject is the wire form of a Block Kit text composition object.
type textObject struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Emoji    *bool  `json:"emoji,omitempty"`
	Verbatim *bool  `json:"verbatim,omitempty"`
}

type block struct {
	Type     string            `json:"type"`
	BlockID  string            `json:"block_id,omitempty"`
	Text     *textObject       `json:"text,omitempty"`
	Fields   []json.RawMessage `json:"fields,omitempty"`
	Elements []json.RawMessage `json:"elements,omitempty"`
}

// validateBlocks checks a blocks JSON array against the limits above. It
// returns Slack's error code ("invalid_blocks_format" for JSON that is not an
// array of objects, "invalid_blocks" otherwise) and the messages.
func validateBlocks(raw []byte) (code string, msgs []string) {
	if !utf8.Valid(raw) {
		return "invalid_blocks", []string{"[ERROR] blocks are not valid UTF-8 [json-pointer:/blocks]"}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return "invalid_blocks_format", []string{"[ERROR] blocks must be a JSON array: " + err.Error()}
	}
	var errs []blockError
	if len(list) > MaxBlocks {
		errs = append(errs, blockError{"/blocks", fmt.Sprintf("no more than %d items allowed (got %d)", MaxBlocks, len(list))})
	}
	for i, r := range list {
		errs = append(errs, validateBlock(fmt.Sprintf("/blocks/%d", i), r)...)
	}
	if len(errs) == 0 {
		return "", nil
	}
	for _, e := range errs {
		msgs = append(msgs, e.String())
	}
	return "invalid_blocks", msgs
}

func validateBlock(ptr string, raw json.RawMessage) []blockError {
	var b block
	if err := json.Unmarshal(raw, &b); err != nil {
		return []blockError{{ptr, "must be an object with a type: " + err.Error()}}
	}
	var errs []blockError
	if Length(b.BlockID) > MaxBlockID {
		errs = append(errs, blockError{ptr + "/block_id", fmt.Sprintf("must be less than %d characters", MaxBlockID+1)})
	}
	switch b.Type {
	case "header":
		if b.Text == nil {
			return append(errs, blockError{ptr + "/text", "is required"})
		}
		if b.Text.Type != "plain_text" {
			errs = append(errs, blockError{ptr + "/text/type", "must be plain_text"})
		}
		errs = append(errs, validateText(ptr+"/text", *b.Text, MaxHeaderText)...)
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return append(errs, blockError{ptr, "must provide text or fields"})
		}
		if b.Text != nil {
			errs = append(errs, validateText(ptr+"/text", *b.Text, MaxTextObject)...)
		}
		if len(b.Fields) > MaxSectionFields {
			errs = append(errs, blockError{ptr + "/fields", fmt.Sprintf("no more than %d items allowed (got %d)", MaxSectionFields, len(b.Fields))})
		}
		for i, f := range b.Fields {
			errs = append(errs, validateRawText(fmt.Sprintf("%s/fields/%d", ptr, i), f, MaxSectionField)...)
		}
	case "context":
		if len(b.Elements) == 0 {
			errs = append(errs, blockError{ptr + "/elements", "must have at least 1 item"})
		}
		if len(b.Elements) > MaxContextElems {
			errs = append(errs, blockError{ptr + "/elements", fmt.Sprintf("no more than %d items allowed (got %d)", MaxContextElems, len(b.Elements))})
		}
		for i, e := range b.Elements {
			errs = append(errs, validateRawText(fmt.Sprintf("%s/elements/%d", ptr, i), e, MaxTextObject)...)
		}
	case "divider":
	default:
		errs = append(errs, blockError{ptr + "/type", fmt.Sprintf("unsupported block type %q (the sink knows header, section, context, divider)", b.Type)})
	}
	return errs
}

func validateRawText(ptr string, raw json.RawMessage, limit int) []blockError {
	var t textObject
	if err := json.Unmarshal(raw, &t); err != nil {
		return []blockError{{ptr, "must be a text object: " + err.Error()}}
	}
	return validateText(ptr, t, limit)
}

func validateText(ptr string, t textObject, limit int) []blockError {
	var errs []blockError
	switch t.Type {
	case "plain_text":
		if t.Verbatim != nil {
			errs = append(errs, blockError{ptr + "/verbatim", "is only allowed on mrkdwn"})
		}
	case "mrkdwn":
		if t.Emoji != nil {
			errs = append(errs, blockError{ptr + "/emoji", "is only allowed on plain_text"})
		}
	default:
		errs = append(errs, blockError{ptr + "/type", fmt.Sprintf("must be plain_text or mrkdwn, not %q", t.Type)})
	}
	n := Length(t.Text)
	if n == 0 {
		errs = append(errs, blockError{ptr + "/text", "must be more than 0 characters"})
	}
	if n > limit {
		errs = append(errs, blockError{ptr + "/text", fmt.Sprintf("must be less than %d characters (got %d)", limit+1, n)})
	}
	return errs
}
