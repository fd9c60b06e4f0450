package signer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// decodeCases are shared with FuzzDecode as seeds.
var decodeCases = []struct {
	name      string
	in        string
	wantErr   string
	wantField string
}{
	{name: "s3 minimal", in: `{"bucket":"media","key":"a.mp4"}`},
	{name: "s3 full", in: `{"bucket":"media","key":"up/b.mp4","method":"PUT","expires":"15m","content_type":"video/mp4"}`},
	{name: "seconds", in: `{"bucket":"media","key":"a","expires":900}`},
	{name: "fractional seconds", in: `{"bucket":"media","key":"a","expires":1.5}`},
	{name: "exponent seconds", in: `{"bucket":"media","key":"a","expires":9e2}`},
	{name: "null expires", in: `{"bucket":"media","key":"a","expires":null}`},
	{name: "unknown field", in: `{"bucket":"media","key":"a","acl":"public-read"}`, wantErr: "unknown field", wantField: "acl"},
	{name: "field in another case", in: `{"Bucket":"media","key":"a"}`, wantErr: "unknown field", wantField: "Bucket"},
	{name: "field twice", in: `{"bucket":"media","key":"a","key":"b"}`, wantErr: "given twice", wantField: "key"},
	{name: "wrong type", in: `{"bucket":7,"key":"a"}`, wantErr: "want a JSON string", wantField: "bucket"},
	{name: "bad expires string", in: `{"bucket":"b","key":"a","expires":"soon"}`, wantErr: "invalid duration", wantField: "expires"},
	{name: "negative expires", in: `{"bucket":"b","key":"a","expires":-5}`, wantErr: "between 0 and", wantField: "expires"},
	{name: "huge expires", in: `{"bucket":"b","key":"a","expires":1e300}`, wantErr: "between 0 and", wantField: "expires"},
	{name: "boolean expires", in: `{"bucket":"b","key":"a","expires":true}`, wantErr: "want a duration", wantField: "expires"},
	{name: "two objects", in: `{"bucket":"b","key":"a"}{}`, wantErr: "one JSON object expected", wantField: "body"},
	{name: "trailing garbage", in: `{"bucket":"b","key":"a"} x`, wantErr: "one JSON object expected", wantField: "body"},
	{name: "empty", in: ``, wantErr: "empty body", wantField: "body"},
	{name: "not json", in: `bucket=b`, wantErr: "invalid JSON", wantField: "body"},
	{name: "array", in: `[]`, wantErr: "want a JSON object", wantField: "body"},
	{name: "null", in: `null`, wantErr: "want a JSON object", wantField: "body"},
}

func TestDecodeS3(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode[S3Request](strings.NewReader(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want no error", tc.in, err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.wantErr) || de.Field != tc.wantField {
				t.Fatalf("Decode(%q) = %v; want a *DecodeError with field %q containing %q", tc.in, err, tc.wantField, tc.wantErr)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	t.Parallel()
	s3r, err := Decode[S3Request](strings.NewReader(`{"bucket":"media","key":"k","method":"PUT","expires":"1h30m","content_type":"video/mp4"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s3r.Bucket != "media" || s3r.Key != "k" || s3r.Method != "PUT" || s3r.Expires == nil || s3r.Expires.D() != 90*time.Minute || s3r.ContentType != "video/mp4" {
		t.Errorf("Decode = %+v, want every field", s3r)
	}
	cf, err := Decode[CloudFrontRequest](strings.NewReader(`{"url":"https://cdn.example.com/a","not_before":"2030-01-02T15:04:05+01:00","ip_range":"203.0.113.0/24","cookies":true,"expires":60}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 1, 2, 14, 4, 5, 0, time.UTC); cf.NotBefore == nil || !cf.NotBefore.Equal(want) || !cf.Cookies || cf.Expires.D() != time.Minute {
		t.Errorf("Decode = %+v, want not_before %v, cookies, 60s", cf, want)
	}
	_, err = Decode[CloudFrontRequest](strings.NewReader(`{"url":"https://cdn.example.com/a","not_before":"tomorrow"}`))
	if de := (*DecodeError)(nil); !errors.As(err, &de) || de.Field != "not_before" {
		t.Errorf("Decode(not_before: tomorrow) = %v, want a DecodeError for not_before", err)
	}
	link, err := Decode[LinkRequest](strings.NewReader(`{"url":"https://media.example.com/paid/a.mp4","ip":"203.0.113.7","expires":"10m"}`))
	if err != nil || link.IP != "203.0.113.7" || link.Expires.D() != 10*time.Minute {
		t.Errorf("Decode(link) = %+v, %v", link, err)
	}
}

func TestValidity(t *testing.T) {
	t.Parallel()
	d := func(v time.Duration) *Duration { x := Duration(v); return &x }
	tests := []struct {
		name    string
		in      *Duration
		max     time.Duration
		want    time.Duration
		wantErr string
	}{
		{name: "default", max: 24 * time.Hour, want: time.Hour},
		{name: "default under a short cap", max: 10 * time.Minute, want: 10 * time.Minute},
		{name: "given", in: d(2 * time.Hour), max: 24 * time.Hour, want: 2 * time.Hour},
		{name: "fraction dropped", in: d(1500 * time.Millisecond), max: time.Hour, want: time.Second},
		{name: "at the cap", in: d(time.Hour), max: time.Hour, want: time.Hour},
		{name: "over the cap", in: d(25 * time.Hour), max: 24 * time.Hour, wantErr: "expires: 1d1h is over the maximum of 1d"},
		{name: "zero", in: d(0), max: time.Hour, wantErr: "at least 1s"},
		{name: "under a second", in: d(time.Millisecond), max: time.Hour, wantErr: "at least 1s"},
	}
	for _, tc := range tests {
		got, err := validity(tc.in, tc.max)
		if tc.wantErr != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "expires" || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: validity = %v, %v; want FieldError %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: validity = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestPrefixesAllow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prefixes Prefixes
		resource string
		want     bool
	}{
		{"nil allows all", nil, "anything/at/all", true},
		{"folder prefix", Prefixes{"media/"}, "media/a.mp4", true},
		{"link path's leading slash", Prefixes{"media/"}, "/media/a.mp4", true},
		{"leading slash on a prefix is not ignored", Prefixes{"/media/"}, "media/a.mp4", false},
		{"folder prefix does not cover the object of its name", Prefixes{"media/"}, "media", false},
		{"folder prefix, longer name", Prefixes{"media/"}, "mediaprivate/a", false},
		// "media" must not grant "media-private/".
		{"segment prefix, sibling with a suffix", Prefixes{"media"}, "media-private/a", false},
		{"segment prefix, sibling without separator", Prefixes{"media"}, "mediaprivate/a", false},
		{"segment prefix, itself", Prefixes{"media"}, "media", true},
		{"segment prefix, under it", Prefixes{"media"}, "media/a", true},
		{"segment prefix inside a key", Prefixes{"bucket/videos/free"}, "bucket/videos/free/a.mp4", true},
		{"segment prefix inside a key, sibling", Prefixes{"bucket/videos/free"}, "bucket/videos/freebies/a.mp4", false},
		{"explicit star", Prefixes{"media*"}, "media-private/a", true},
		{"explicit star, itself", Prefixes{"media*"}, "media", true},
		{"explicit star, other", Prefixes{"media*"}, "medi", false},
		{"case matters", Prefixes{"media/"}, "Media/a", false},
		{"second prefix", Prefixes{"a/", "b/"}, "b/x", true},
		{"empty list allows nothing", Prefixes{}, "x", false},
		{"empty prefix allows nothing", Prefixes{""}, "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.prefixes.Allow(tc.resource); got != tc.want {
				t.Errorf("Prefixes%q.Allow(%q) = %v, want %v", tc.prefixes, tc.resource, got, tc.want)
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prefix, wantErr string
	}{
		{name: "folder", prefix: "media/"},
		{name: "segment", prefix: "media"},
		{name: "star", prefix: "media*"},
		{name: "bucket and key", prefix: "media-bucket/videos/"},
		{name: "empty", prefix: "", wantErr: "omit prefixes to allow everything"},
		{name: "slash", prefix: "/", wantErr: "omit prefixes to allow everything"},
		{name: "star alone", prefix: "*", wantErr: "omit prefixes to allow everything"},
		{name: "slashes", prefix: "//", wantErr: "omit prefixes to allow everything"},
		{name: "slash star", prefix: "/*", wantErr: "omit prefixes to allow everything"},
		{name: "leading slash", prefix: "/paid/", wantErr: `resources have no leading slash (S3: BUCKET/KEY; links and CloudFront: the path without its leading /); write "paid/"`},
		{name: "star inside", prefix: "media/*/free/", wantErr: `allowed only as the last character`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPrefix(tc.prefix)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("CheckPrefix(%q) = %v, want nil", tc.prefix, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("CheckPrefix(%q) = %v, want an error containing %q", tc.prefix, err, tc.wantErr)
			}
		})
	}
}
