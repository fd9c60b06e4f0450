package signer

// GlobMatch exposes globMatch to the external fuzz test.
var GlobMatch = globMatch

// CheckKey exposes checkKey to the external fuzz test.
var CheckKey = checkKey
