package intel

import (
	"errors"
	"fmt"
)

// ErrTooBroad is wrapped by the errors of VetFeed and VetTrusted: a list
// covers more address space than its publisher would ever list.
var ErrTooBroad = errors.New("list too broad")

// Bounds of VetFeed and VetTrusted.
const (
	// maxFeedCover4 is the most IPv4 addresses a blocklist may cover:
	// a quarter of the space. FireHOL level 1, which lists the bogons
	// and 224.0.0.0/3, covers about a seventh.
	maxFeedCover4 = 1 << 30
	// minFeedBits6 is the shortest IPv6 prefix a blocklist may hold.
	minFeedBits6 = 12
	// minTrustedBits4 and minTrustedBits6 are the shortest prefixes a
	// trusted-proxy list may hold: a CDN's largest ranges are /12 and
	// /29.
	minTrustedBits4 = 8
	minTrustedBits6 = 16
)

// VetFeed refuses a blocklist that covers more than a quarter of the IPv4
// space, or holds an IPv6 prefix shorter than /12: a broken or hostile
// list that would block everyone (0.0.0.0/1 and 128.0.0.0/1, or
// ::ffff:0.0.0.0/96 folded to 0.0.0.0/0).
func VetFeed(s *Set) error {
	var cover4 uint64
	for p := range s.Prefixes() {
		switch {
		case p.Addr().Is4():
			cover4 += 1 << (32 - p.Bits())
		case p.Bits() < minFeedBits6:
			return fmt.Errorf("%w: %s is shorter than /%d", ErrTooBroad, p, minFeedBits6)
		}
	}
	if cover4 > maxFeedCover4 {
		return fmt.Errorf("%w: it covers %d IPv4 addresses, more than a quarter of them", ErrTooBroad, cover4)
	}
	return nil
}

// VetTrusted refuses a trusted-proxy list with an IPv4 prefix shorter
// than /8 or an IPv6 prefix shorter than /16: trusting such a list lets
// nearly anyone name any client address.
func VetTrusted(s *Set) error {
	for p := range s.Prefixes() {
		if p.Addr().Is4() && p.Bits() < minTrustedBits4 || !p.Addr().Is4() && p.Bits() < minTrustedBits6 {
			return fmt.Errorf("%w: %s trusts too much (shorter than /%d for IPv4, /%d for IPv6)", ErrTooBroad, p, minTrustedBits4, minTrustedBits6)
		}
	}
	return nil
}
