package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// spamhausLine is one line of Spamhaus' DROP NDJSON: an entry or the
// final metadata.
type spamhausLine struct {
	CIDR    string `json:"cidr"`
	Type    string `json:"type"`
	Records *int   `json:"records"`
}

func parseSpamhaus(r io.Reader, lim Limits) (*Parsed, error) {
	const f = FormatSpamhausDropJSON
	out := &Parsed{}
	records, metaLine := -1, 0
	err := lines(r, f, func(line []byte, n int) error {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return nil
		}
		if metaLine != 0 {
			return &ParseError{Format: f, Line: n, Err: fmt.Errorf("%w: entry after the metadata line %d", ErrMalformed, metaLine)}
		}
		var e spamhausLine
		if err := json.Unmarshal(line, &e); err != nil {
			return &ParseError{Format: f, Line: n, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
		}
		switch {
		case e.CIDR != "":
			p, err := parseAddrOrPrefix(e.CIDR)
			if err != nil {
				return &ParseError{Format: f, Line: n, Err: fmt.Errorf("%w: cidr %q: %v", ErrMalformed, clip([]byte(e.CIDR)), err)}
			}
			if len(out.Prefixes) == lim.MaxPrefixes {
				return &ParseError{Format: f, Line: n, Err: ErrTooMany}
			}
			out.Prefixes = append(out.Prefixes, p)
		case e.Type == "metadata":
			metaLine = n
			if e.Records != nil {
				records = *e.Records
			}
		default:
			return &ParseError{Format: f, Line: n, Err: fmt.Errorf("%w: neither an entry (cidr) nor the metadata line", ErrMalformed)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if records >= 0 && records != len(out.Prefixes) {
		return nil, &ParseError{Format: f, Line: metaLine,
			Err: fmt.Errorf("%w: metadata says %d records, the list holds %d (truncated download?)", ErrMalformed, records, len(out.Prefixes))}
	}
	return out, nil
}

// lineAt is the 1-based line of body's byte offset off.
func lineAt(body []byte, off int64) int {
	off = min(max(off, 0), int64(len(body)))
	return 1 + bytes.Count(body[:off], []byte{'\n'})
}

// jsonError turns a decoding error of body into a ParseError at its line.
func jsonError(f Format, body []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	line := 0
	switch {
	case errors.As(err, &se):
		line = lineAt(body, se.Offset)
	case errors.As(err, &te):
		line = lineAt(body, te.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		line = lineAt(body, int64(len(body)))
		err = fmt.Errorf("truncated JSON document")
	}
	return &ParseError{Format: f, Line: line, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
}

// decodeStrict decodes the one JSON document in body into v and refuses
// trailing data.
func decodeStrict(f Format, body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(f, body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ParseError{Format: f, Line: lineAt(body, dec.InputOffset()), Err: fmt.Errorf("%w: data after the JSON document", ErrMalformed)}
	}
	return nil
}

// addStrings parses each of ss into out; a bad one refuses the list, at
// the line where its text first appears in body.
func addStrings(f Format, body []byte, out *Parsed, lim Limits, ss []string) error {
	for _, s := range ss {
		p, err := parseAddrOrPrefix(strings.TrimSpace(s))
		if err != nil {
			q, _ := json.Marshal(s)
			return &ParseError{Format: f, Line: lineAt(body, int64(bytes.Index(body, q))),
				Err: fmt.Errorf("%w: %q: %v", ErrMalformed, clip([]byte(s)), err)}
		}
		if len(out.Prefixes) == lim.MaxPrefixes {
			return &ParseError{Format: f, Err: ErrTooMany}
		}
		out.Prefixes = append(out.Prefixes, p)
	}
	return nil
}

func parseFastly(body []byte, lim Limits) (*Parsed, error) {
	const f = FormatFastlyJSON
	var doc struct {
		Addresses     *[]string `json:"addresses"`
		IPv6Addresses []string  `json:"ipv6_addresses"`
	}
	if err := decodeStrict(f, body, &doc); err != nil {
		return nil, err
	}
	if doc.Addresses == nil {
		return nil, &ParseError{Format: f, Err: fmt.Errorf("%w: no \"addresses\" key", ErrMalformed)}
	}
	out := &Parsed{}
	if err := addStrings(f, body, out, lim, *doc.Addresses); err != nil {
		return nil, err
	}
	if err := addStrings(f, body, out, lim, doc.IPv6Addresses); err != nil {
		return nil, err
	}
	return out, nil
}

func parseCloudFront(body []byte, lim Limits) (*Parsed, error) {
	const f = FormatCloudFrontJSON
	var doc struct {
		Global   *[]string `json:"CLOUDFRONT_GLOBAL_IP_LIST"`
		Regional []string  `json:"CLOUDFRONT_REGIONAL_EDGE_IP_LIST"`
	}
	if err := decodeStrict(f, body, &doc); err != nil {
		return nil, err
	}
	if doc.Global == nil {
		return nil, &ParseError{Format: f, Err: fmt.Errorf("%w: no \"CLOUDFRONT_GLOBAL_IP_LIST\" key", ErrMalformed)}
	}
	out := &Parsed{}
	if err := addStrings(f, body, out, lim, *doc.Global); err != nil {
		return nil, err
	}
	if err := addStrings(f, body, out, lim, doc.Regional); err != nil {
		return nil, err
	}
	return out, nil
}

// awsService is the service whose prefixes FormatAWSCloudFront keeps.
// CLOUDFRONT holds every edge range, CLOUDFRONT_ORIGIN_FACING (the
// subset that connects to origins) included.
const awsService = "CLOUDFRONT"

func parseAWS(body []byte, lim Limits) (*Parsed, error) {
	const f = FormatAWSCloudFront
	var doc struct {
		SyncToken string `json:"syncToken"`
		Prefixes  *[]struct {
			IPPrefix string `json:"ip_prefix"`
			Service  string `json:"service"`
		} `json:"prefixes"`
		IPv6Prefixes []struct {
			IPv6Prefix string `json:"ipv6_prefix"`
			Service    string `json:"service"`
		} `json:"ipv6_prefixes"`
	}
	if err := decodeStrict(f, body, &doc); err != nil {
		return nil, err
	}
	if doc.Prefixes == nil {
		return nil, &ParseError{Format: f, Err: fmt.Errorf("%w: no \"prefixes\" key", ErrMalformed)}
	}
	var ss []string
	out := &Parsed{}
	for _, p := range *doc.Prefixes {
		if p.Service == awsService {
			ss = append(ss, p.IPPrefix)
		} else {
			out.Ignored++
		}
	}
	for _, p := range doc.IPv6Prefixes {
		if p.Service == awsService {
			ss = append(ss, p.IPv6Prefix)
		} else {
			out.Ignored++
		}
	}
	if err := addStrings(f, body, out, lim, ss); err != nil {
		return nil, err
	}
	return out, nil
}

// crowdsecDecision is one LAPI decision (models.Decision); the fields we
// do not read are left out.
type crowdsecDecision struct {
	Type     string `json:"type"`
	Scope    string `json:"scope"`
	Value    string `json:"value"`
	Duration string `json:"duration"`
}

func parseCrowdSec(body []byte, lim Limits) (*Parsed, error) {
	const f = FormatCrowdSec
	var decisions []crowdsecDecision
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, &ParseError{Format: f, Err: fmt.Errorf("%w: empty answer", ErrMalformed)}
	case trimmed[0] == '{':
		var stream struct {
			New     *[]crowdsecDecision `json:"new"`
			Deleted json.RawMessage     `json:"deleted"`
		}
		if err := decodeStrict(f, body, &stream); err != nil {
			return nil, err
		}
		if stream.New == nil && stream.Deleted == nil {
			return nil, &ParseError{Format: f, Err: fmt.Errorf("%w: an object without \"new\" or \"deleted\"", ErrMalformed)}
		}
		if stream.New != nil {
			decisions = *stream.New
		}
	default:
		// LAPI answers "null" when there is no decision.
		if err := decodeStrict(f, body, &decisions); err != nil {
			return nil, err
		}
	}
	out := &Parsed{}
	for _, d := range decisions {
		// A negative duration is a decision that has run out (LAPI
		// lists them until it cleans them up).
		if !strings.EqualFold(d.Type, "ban") || strings.HasPrefix(d.Duration, "-") {
			out.Ignored++
			continue
		}
		var p netip.Prefix
		var err error
		switch {
		case strings.EqualFold(d.Scope, "ip"):
			var a netip.Addr
			if a, err = netip.ParseAddr(d.Value); err == nil {
				if a.Zone() != "" {
					err = errors.New("address has a zone")
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		case strings.EqualFold(d.Scope, "range"):
			p, err = netip.ParsePrefix(d.Value)
		default:
			// Country, AS and custom scopes are CrowdSec's own
			// business; they name no prefix.
			out.Ignored++
			continue
		}
		if err != nil {
			q, _ := json.Marshal(d.Value)
			return nil, &ParseError{Format: f, Line: lineAt(body, int64(bytes.Index(body, q))),
				Err: fmt.Errorf("%w: decision value %q: %v", ErrMalformed, clip([]byte(d.Value)), err)}
		}
		if len(out.Prefixes) == lim.MaxPrefixes {
			return nil, &ParseError{Format: f, Err: ErrTooMany}
		}
		out.Prefixes = append(out.Prefixes, p)
	}
	return out, nil
}
