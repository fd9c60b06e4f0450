// Package geo answers which country and which autonomous system (ASN)
// an address belongs to, from MaxMind DB files: GeoLite2-Country and
// GeoLite2-ASN, GeoIP2 Country/City and ISP, or DB-IP's Lite files, which
// share the layout (country.iso_code, registered_country.iso_code,
// autonomous_system_number).
//
// A DB reads each file whole into memory (no mmap: a file rewritten in
// place cannot fault a lookup), verifies it, and decodes the one field a
// rule needs from every distinct record once, into a table keyed by the
// record's offset in the file. A lookup then walks the search tree and
// reads that table: no decoding and no allocation per request.
//
// Refresh re-reads a file whose identity, size or modification time
// changed (geoipupdate replaces the file by rename). A file that cannot
// be read or does not verify keeps the last good copy serving; the
// failure is counted in Stats and logged once per change of the file.
// Each database is held behind an atomic pointer: lookups take no lock
// and may run concurrently with Refresh.
//
// The package knows nothing of rules, hosts or HTTP; the middleware asks
// it and decides.
package geo
