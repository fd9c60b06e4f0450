package firewall

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestValidFeedName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, feed, wantErr string
	}{
		{"one letter", "a", ""},
		{"sixteen", "firehol_level1-x", ""},
		{"digits", "0123456789", ""},
		{"empty", "", "1 to 16"},
		{"seventeen", "firehol_level1-xy", "1 to 16"},
		{"upper case", "FireHOL", "is not one of"},
		{"dot", "a.b", "is not one of"},
		{"space", "a b", "is not one of"},
		{"slash", "a/b", "is not one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidFeedName(tc.feed)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("ValidFeedName(%q) = %v, want %q", tc.feed, err, tc.wantErr)
			}
		})
	}
}

func pfx(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestSplitPrefixes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      []netip.Prefix
		limit   int
		v4, v6  []netip.Prefix
		wantErr string
	}{
		{
			name: "masked, sorted, families apart",
			in:   pfx("203.0.113.7/24", "2001:db8::1/32", "198.51.100.0/24"),
			v4:   pfx("198.51.100.0/24", "203.0.113.0/24"),
			v6:   pfx("2001:db8::/32"),
		},
		{
			name: "inner and duplicate prefixes dropped",
			in:   pfx("10.1.2.3/32", "10.0.0.0/8", "10.0.0.0/8", "11.0.0.0/16", "11.0.1.0/24", "11.1.0.0/24"),
			v4:   pfx("10.0.0.0/8", "11.0.0.0/16", "11.1.0.0/24"),
		},
		{
			name: "IPv4-mapped taken as IPv4",
			in:   pfx("::ffff:198.51.100.0/120"),
			v4:   pfx("198.51.100.0/24"),
		},
		{name: "a whole family", in: pfx("0.0.0.0/0"), wantErr: "whole family"},
		{name: "a whole IPv6 family", in: pfx("::/0"), wantErr: "whole family"},
		{name: "short mapped prefix", in: pfx("::ffff:0:0/95"), wantErr: "shorter than /96"},
		{name: "invalid", in: []netip.Prefix{{}}, wantErr: "invalid prefix"},
		{name: "over the limit", in: pfx("10.0.0.0/24", "10.0.2.0/24"), limit: 1, wantErr: "at most 1"},
		{name: "inner ones do not count", in: pfx("10.0.0.0/16", "10.0.2.0/24"), limit: 1, v4: pfx("10.0.0.0/16")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = MaxFeedPrefixes
			}
			v4, v6, err := splitPrefixes(slices.Clone(tc.in), limit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("splitPrefixes(%v) = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(v4, tc.v4) || !slices.Equal(v6, tc.v6) {
				t.Errorf("splitPrefixes(%v) = %v, %v, %v; want %v, %v", tc.in, v4, v6, err, tc.v4, tc.v6)
			}
		})
	}
}

// fakeFeeds is the in-memory kernel of feeds, for the policy of Feeds.
type fakeFeeds struct {
	sets   map[string][2][]netip.Prefix
	exempt [2][]netip.Prefix
}

func (k *fakeFeeds) setFeed(_ context.Context, name string, v4, v6 []netip.Prefix) error {
	k.sets[name] = [2][]netip.Prefix{v4, v6}
	return nil
}

func (k *fakeFeeds) removeFeed(_ context.Context, name string) error {
	delete(k.sets, name)
	return nil
}

func (k *fakeFeeds) setExempt(_ context.Context, v4, v6 []netip.Prefix) error {
	k.exempt = [2][]netip.Prefix{v4, v6}
	return nil
}

func (k *fakeFeeds) feeds(context.Context, bool) ([]FeedStatus, error) {
	var out []FeedStatus
	for n, s := range k.sets {
		out = append(out, FeedStatus{Name: n, IPv4: len(s[0]), IPv6: len(s[1])})
	}
	return out, nil
}

// fakeFeedBackend is a Backend with feed sets.
type fakeFeedBackend struct {
	Backend
	*fakeFeeds
}

func (fakeFeedBackend) Name() string { return "fake" }

func TestFeedsPolicy(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	k := &fakeFeeds{sets: map[string][2][]netip.Prefix{}}
	f, err := NewFeeds(FeedsConfig{Backend: fakeFeedBackend{fakeFeeds: k}})
	if err != nil {
		t.Fatalf("NewFeeds() = %v", err)
	}
	if err := f.SetFeed(ctx, "Bad", nil); err == nil {
		t.Errorf("SetFeed(%q) = nil, want an error", "Bad")
	}
	if err := f.SetFeed(ctx, "a", pfx("0.0.0.0/0")); err == nil || len(k.sets) != 0 {
		t.Errorf("SetFeed(a, 0.0.0.0/0) = %v, kernel %v; want an error and nothing set", err, k.sets)
	}
	for _, n := range []string{"c", "a", "b"} {
		if err := f.SetFeed(ctx, n, pfx("203.0.113.0/24", "2001:db8::/32", "203.0.113.9/32")); err != nil {
			t.Fatalf("SetFeed(%s) = %v", n, err)
		}
	}
	st, err := f.Status(ctx)
	want := []FeedStatus{{"a", 1, 1}, {"b", 1, 1}, {"c", 1, 1}}
	if err != nil || !slices.Equal(st, want) {
		t.Errorf("Status() = %v, %v; want %v", st, err, want)
	}
	removed, err := f.Prune(ctx, []string{"b"})
	slices.Sort(removed)
	if err != nil || !slices.Equal(removed, []string{"a", "c"}) {
		t.Errorf("Prune([b]) = %v, %v; want [a c]", removed, err)
	}
	if _, ok := k.sets["b"]; !ok || len(k.sets) != 1 {
		t.Errorf("after Prune the kernel holds %v, want b only", k.sets)
	}
	if err := f.SetExempt(ctx, pfx("198.51.100.7/32", "2001:db8::1/128")); err != nil {
		t.Fatalf("SetExempt() = %v", err)
	}
	if !slices.Equal(k.exempt[0], pfx("198.51.100.7/32")) || !slices.Equal(k.exempt[1], pfx("2001:db8::1/128")) {
		t.Errorf("exempt = %v, want 198.51.100.7/32 and 2001:db8::1/128", k.exempt)
	}
}

// plainBackend is a Backend without feed sets.
type plainBackend struct{ Backend }

func (plainBackend) Name() string { return "iptables" }

func TestNewFeedsUnsupported(t *testing.T) {
	t.Parallel()
	if _, err := NewFeeds(FeedsConfig{Backend: plainBackend{}}); !errors.Is(err, ErrFeedsUnsupported) {
		t.Errorf("NewFeeds(iptables) = %v, want ErrFeedsUnsupported", err)
	}
	if _, err := NewFeeds(FeedsConfig{}); err == nil {
		t.Errorf("NewFeeds(no backend) = nil, want an error")
	}
}
