package signer_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/match"
	"gatehouse/signer"
)

// FuzzDecode feeds arbitrary bodies to the request decoder of each
// request type. Properties: an error is always a *DecodeError; a decoded
// request marshals to JSON that decodes to the same request (the CLI
// sends requests that way), and expires is never negative.
func FuzzDecode(f *testing.F) {
	// Valid requests of each type.
	f.Add(`{"bucket":"media","key":"a.mp4","method":"PUT","expires":"15m","content_type":"video/mp4"}`)
	f.Add(`{"url":"https://cdn.example.com/v/*","not_before":"2030-01-02T15:04:05Z","ip_range":"203.0.113.0/24","cookies":true}`)
	f.Add(`{"url":"https://media.example.com/paid/a.mp4","ip":"2001:db8::1","expires":600}`)
	f.Add(`{"url":"https://media.example.com/paid/a.mp4?id=1","method":"HEAD","expires":"1h"}`)
	// Expires in every form, and broken ones.
	f.Add(`{"expires":1.5}`)
	f.Add(`{"expires":9e2}`)
	f.Add(`{"expires":"1w2d3h"}`)
	f.Add(`{"expires":-1}`)
	f.Add(`{"expires":"0.000000001s"}`)
	f.Add(`{"expires":null}`)
	// Structure problems: unknown fields, wrong types, trailing data.
	f.Add(`{"bucket":1}`)
	f.Add(`{"acl":"public"}`)
	f.Add(`{}{}`)
	f.Add(`{"not_before":"2030-13-01T00:00:00Z"}`)
	f.Add(``)
	// Members given twice, in another case, a null body.
	f.Add(`{"bucket":"a","bucket":"b"}`)
	f.Add(`{"Bucket":"media","key":"a"}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, body string) {
		checkDecode[signer.S3Request](t, body)
		checkDecode[signer.CloudFrontRequest](t, body)
		checkDecode[signer.LinkRequest](t, body)
	})
}

func checkDecode[T signer.Request](t *testing.T, body string) {
	req, err := signer.Decode[T](strings.NewReader(body))
	if err != nil {
		var de *signer.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("Decode(%q) error %T %v is not a *DecodeError", body, err, err)
		}
		return
	}
	if e := reflect.ValueOf(req).FieldByName("Expires"); !e.IsNil() && e.Elem().Int() < 0 {
		t.Fatalf("Decode(%q): negative expires %v", body, e.Elem().Interface())
	}
	again, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", req, err)
	}
	back, err := signer.Decode[T](strings.NewReader(string(again)))
	if err != nil {
		t.Fatalf("Decode(Marshal(Decode(%q))) = %v; marshalled %s", body, err, again)
	}
	if !reflect.DeepEqual(normalise(req), normalise(back)) {
		t.Fatalf("round trip of %q: %+v, then %s, then %+v", body, req, again, back)
	}
}

// normalise drops the location of a not_before time, which the round
// trip turns into UTC on purpose.
func normalise(v any) any {
	if cf, ok := v.(signer.CloudFrontRequest); ok && cf.NotBefore != nil {
		nb := signer.Time{Time: cf.NotBefore.UTC()}
		cf.NotBefore = &nb
		return cf
	}
	return v
}

// FuzzLinkVerify feeds arbitrary query strings, alone and around a
// genuine signature, to Verify. Properties: the stripped query is the
// query without any link parameter and every other parameter in order
// (checked against a plain split); with query: sign, a link verifies
// with exactly the query it was signed for and a link signed for no
// query verifies only with none ("?id=2&admin=1" appended to a
// link fails); with query: ignore, a genuine signature verifies whatever
// foreign parameters surround it. Either way a repeated link parameter
// is refused.
func FuzzLinkVerify(f *testing.F) {
	// Plain queries, empty parameters and separators.
	f.Add("")
	f.Add("a=1")
	f.Add("a=1&b=2")
	f.Add("&&")
	f.Add("=&=")
	// Link parameters: forged, repeated, unreadable, without "=".
	f.Add("gh_expires=1&gh_signature=x")
	f.Add("gh_ip=1")
	f.Add("gh_expires=99999999999999999999")
	f.Add("a=1&gh_signature=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&b")
	f.Add("gh_expires")
	// The tampering, and parameters that look like ours.
	f.Add("id=2&admin=1")
	f.Add("gh_x=1&gh_signaturex=2")
	f.Add("id=1%26admin%3D1")
	now := time.Unix(1_900_000_000, 0)
	key := [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	newLinks := func(ignore bool) *signer.Links {
		l, err := signer.NewLinks(signer.LinkConfig{Keys: key, IgnoreQuery: ignore, Now: func() time.Time { return now }})
		if err != nil {
			f.Fatal(err)
		}
		return l
	}
	sign, ignore := newLinks(false), newLinks(true)
	client := netip.MustParseAddr("203.0.113.7")
	const host, path = "media.example.com", "/paid/a.mp4"
	exp := now.Add(time.Hour)
	genuine := ignore.Sign("GET", host, path, "", exp, netip.Addr{})
	noQuery := sign.Sign("GET", host, path, "", exp, netip.Addr{})
	f.Fuzz(func(t *testing.T, q string) {
		stripped, err := sign.Verify("GET", host, path, q, client)
		if want := refStrip(q); stripped != want {
			t.Fatalf("Verify(%q) stripped %q, want %q", q, stripped, want)
		}
		if err == nil {
			t.Fatalf("Verify(%q) accepted a query without a genuine signature", q)
		}
		repeated := hasLinkParam(q)
		for _, around := range []string{q + "&" + genuine, genuine + "&" + q} {
			if _, err := ignore.Verify("GET", host, path, around, client); repeated != (err != nil) {
				t.Fatalf("query ignored: Verify(%q) = %v; want an error only when %q repeats a link parameter", around, err, q)
			}
		}
		for _, around := range []string{q + "&" + noQuery, noQuery + "&" + q} {
			if _, err := sign.Verify("GET", host, path, around, client); (q == "") != (err == nil) {
				t.Fatalf("query signed: Verify(%q) of a link signed for no query = %v; want valid only without a query", around, err)
			}
		}
		if !repeated {
			link := q + "&" + sign.Sign("GET", host, path, q, exp, netip.Addr{})
			if out, err := sign.Verify("GET", host, path, link, client); err != nil || out != q {
				t.Fatalf("query signed: Verify(%q) of a link signed for %q = %q, %v; want it valid and the query kept", link, q, out, err)
			}
		}
	})
}

// FuzzRedactSignatures checks the redaction of gh_signature values in
// logged URIs and Referers. Properties: the result holds no signature
// value (SignatureSpan finds none); redaction is idempotent; text
// without the parameter name is unchanged; and a genuine signature
// planted in the input, in any of the separators a nested URL uses,
// never survives.
func FuzzRedactSignatures(f *testing.F) {
	// Plain URIs and Referers.
	f.Add("/paid/a.mp4?t=10", "")
	f.Add("https://media.example.com/page", "=")
	// Link parameters, alone, repeated, empty, cut.
	f.Add("/paid/a.mp4?gh_expires=1&gh_signature=", "=")
	f.Add("gh_signaturegh_signature==", "%3D")
	f.Add("?gh_signature=a&gh_signature=b#frag", "%253d")
	// A link nested in another URL's query.
	f.Add("https://app.example.com/login?next=%2Fpaid%2Fa.mp4%3Fgh_signature", "%3D")
	sig := "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd"
	f.Fuzz(func(t *testing.T, s, sep string) {
		r := signer.RedactSignatures(s)
		if start, _ := signer.SignatureSpan(r); start >= 0 {
			t.Fatalf("RedactSignatures(%q) = %q still holds a signature", s, r)
		}
		if again := signer.RedactSignatures(r); again != r {
			t.Fatalf("RedactSignatures is not idempotent: %q, then %q", r, again)
		}
		if !strings.Contains(s, signer.ParamSignature) && r != s {
			t.Fatalf("RedactSignatures(%q) = %q; want it unchanged", s, r)
		}
		for _, known := range []string{"=", "%3D", "%3d", "%253D", "%253d"} {
			if sep == known {
				planted := s + "&" + signer.ParamSignature + sep + sig
				if r := signer.RedactSignatures(planted); strings.Contains(r, sig) {
					t.Fatalf("RedactSignatures(%q) = %q keeps the signature", planted, r)
				}
			}
		}
	})
}

func hasLinkParam(q string) bool {
	for seg := range strings.SplitSeq(q, "&") {
		name, _, _ := strings.Cut(seg, "=")
		if name == signer.ParamExpires || name == signer.ParamIP || name == signer.ParamSignature {
			return true
		}
	}
	return false
}

// refStrip removes the link parameters from q by splitting it, the
// simplest correct way, keeping empty parameters.
func refStrip(q string) string {
	if !hasLinkParam(q) {
		return q
	}
	var keep []string
	for seg := range strings.SplitSeq(q, "&") {
		name, _, _ := strings.Cut(seg, "=")
		if name != signer.ParamExpires && name != signer.ParamIP && name != signer.ParamSignature {
			keep = append(keep, seg)
		}
	}
	return strings.Join(keep, "&")
}

// FuzzGlob checks the CloudFront resource matcher against a regexp
// built from the pattern.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"https://cdn.example.com/v/*", "https://cdn.example.com/v/a.mp4"},
		{"https://cdn.example.com/v/?.mp4", "https://cdn.example.com/v/a.mp4"},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"},
		{"", ""},
		{"*", ""},
		{"a?", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		// The matcher works on bytes, the regexp on runes: they agree on
		// ASCII, and URLs are ASCII (parseURL refuses anything else).
		if !isASCII(pattern) || !isASCII(s) {
			return
		}
		re := regexp.MustCompile(`(?s)\A` + strings.NewReplacer(`\*`, `.*`, `\?`, `.`).Replace(regexp.QuoteMeta(pattern)) + `\z`)
		if got, want := signer.GlobMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzCheckKey checks the S3 key rule differentially against net/url's
// decoder: a key checkKey accepts has, at every stage of repeated
// percent-decoding url.PathUnescape manages, no segment (split on "/"
// or "\") of only dots and spaces, no "\" and no control character; and
// a key it refuses is refused with field key.
func FuzzCheckKey(f *testing.F) {
	// Keys that must pass: dots and percent signs forming no dot segment.
	for _, s := range []string{"free/a.mp4", "free/..a", "free/a..", "100%", "100%25 off.mp4", ".hidden/x", "a//b", "%2e%2ea"} {
		f.Add(s)
	}
	// The refused class: dot segments raw, padded, encoded, double-encoded,
	// behind an encoded separator, backslashes and control characters.
	for _, s := range []string{"free/../paid", "free/...", "free/.. /x", "free/ /x", `free\..\paid`, "free/%2e%2e/x",
		"free/%2E./x", "free/.%2e", "free/%252e%252e/x", "free/..%2fpaid", "free/..%5cpaid", "a%00b", "a%2", "%%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := signer.CheckKey(key)
		if err != nil {
			var fe *signer.FieldError
			if !errors.As(err, &fe) || fe.Field != "key" {
				t.Fatalf("CheckKey(%q) = %v, want a FieldError for key", key, err)
			}
			return
		}
		for stage := key; ; {
			if strings.ContainsRune(stage, '\\') {
				t.Fatalf("CheckKey(%q) accepted a key whose decoding %q has a backslash", key, stage)
			}
			for _, c := range stage {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("CheckKey(%q) accepted a key whose decoding %q has a control character", key, stage)
				}
			}
			for seg := range strings.SplitSeq(stage, "/") {
				if seg != "" && strings.Trim(seg, ". ") == "" {
					t.Fatalf("CheckKey(%q) accepted a key whose decoding %q has the segment %q", key, stage, seg)
				}
			}
			next, err := url.PathUnescape(stage)
			if err != nil || next == stage {
				break
			}
			stage = next
		}
	})
}

// FuzzPrefixes checks token prefixes differentially against the
// gateway's own path prefixes (match.PrefixSet), which match on segment
// boundaries too: for a valid prefix without "*" and lower-case input
// ASCII (PrefixSet folds case, Unicode's too; object keys do not), Allow agrees with
// Covers on the resource as a path, except that a grant ending in "/"
// does not cover the key without it. A trailing "*" is a plain string
// prefix.
func FuzzPrefixes(f *testing.F) {
	for _, s := range [][2]string{{"media", "media"}, {"media", "media/a"}, {"media", "media-private/a"}, {"media/", "media"},
		{"media/", "media/a"}, {"media*", "media-private/a"}, {"b/k", "b/k/x"}, {"b/k", "b/kx"}, {"/", "x"}, {"", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pre, resource string) {
		got := signer.Prefixes{pre}.Allow(resource)
		if signer.CheckPrefix(pre) != nil {
			if pre == "" && got {
				t.Fatalf("the empty prefix allowed %q", resource)
			}
			return
		}
		if base, ok := strings.CutSuffix(pre, "*"); ok {
			if want := strings.HasPrefix(strings.TrimPrefix(resource, "/"), base); got != want {
				t.Fatalf("Prefixes{%q}.Allow(%q) = %v, want %v", pre, resource, got, want)
			}
			return
		}
		if !lowerASCII(pre) || !lowerASCII(resource) {
			return
		}
		ps, err := match.CompilePrefixes([]string{"/" + pre})
		if err != nil {
			t.Fatal(err)
		}
		want := ps.Covers("/" + strings.TrimPrefix(resource, "/"))
		if dir, ok := strings.CutSuffix(pre, "/"); ok && strings.TrimPrefix(resource, "/") == dir {
			// A path rule "/media/" also protects "/media"; a
			// grant "media/" never covers the object "media".
			want = false
		}
		if got != want {
			t.Fatalf("Prefixes{%q}.Allow(%q) = %v; match.PrefixSet{/%s}.Covers = %v", pre, resource, got, pre, want)
		}
	})
}

// lowerASCII reports whether s is ASCII without upper-case letters.
func lowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || ('A' <= s[i] && s[i] <= 'Z') {
			return false
		}
	}
	return true
}
