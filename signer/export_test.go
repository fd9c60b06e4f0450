package signer

// GlobMatch exposes globMatch to the external fuzz test.
var GlobMatch = globMatch
