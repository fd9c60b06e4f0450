package geo

import "strings"

// iso3166 lists the ISO 3166-1 alpha-2 country codes in use, and XK
// (Kosovo), the user-assigned code MaxMind and DB-IP record for it.
const iso3166 = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"XK " +
	"YE YT " +
	"ZA ZM ZW"

// Unknown is the token that names, in a rule's country list, every
// address the country database gives no country: private, loopback and
// unlisted addresses.
const Unknown = "unknown"

// CountryIndex returns the index (0–675) of the two-letter code cc, in
// either case, and whether cc is two ASCII letters. Rules keep country
// sets as 676-entry tables indexed by it.
func CountryIndex(cc string) (int, bool) {
	if len(cc) != 2 {
		return 0, false
	}
	a, b := cc[0]|0x20, cc[1]|0x20
	if a < 'a' || a > 'z' || b < 'a' || b > 'z' {
		return 0, false
	}
	return int(a-'a')*26 + int(b-'a'), true
}

// Countries is the size of a country table indexed by CountryIndex.
const Countries = 26 * 26

// ParseCountry returns the upper-case form of an ISO 3166-1 alpha-2
// code written in either case, and whether it is one (XK included).
func ParseCountry(s string) (string, bool) {
	if len(s) != 2 {
		return "", false
	}
	u := strings.ToUpper(s)
	if _, ok := CountryIndex(u); !ok {
		return "", false
	}
	for i := 0; i+2 <= len(iso3166); i += 3 {
		if iso3166[i:i+2] == u {
			return u, true
		}
	}
	return "", false
}
