package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// authenticator checks a request's Authorization header against the configured credentials.
type authenticator struct {
	open      bool
	bearer    []byte // sha256 of the token; nil when bearer auth is off
	basicUser []byte // sha256 of user and password; nil when basic auth is off
	basicPass []byte
	challenge string // WWW-Authenticate value for a 401
}

// authResult is what a request's credentials amount to.
type authResult int

const (
	authOK authResult = iota
	authMissing
	authWrong
)

func newAuthenticator(token, user, password string, allowOpen bool) (authenticator, error) {
	a := authenticator{}
	var challenges []string
	if token != "" {
		a.bearer = digest(token)
		challenges = append(challenges, `Bearer realm="vectorheal"`)
	}
	if user != "" {
		a.basicUser, a.basicPass = digest(user), digest(password)
		challenges = append(challenges, `Basic realm="vectorheal", charset="UTF-8"`)
	} else if password != "" {
		return a, errors.New("webhook: basic auth password given without a user")
	}
	if len(challenges) == 0 {
		if !allowOpen {
			return a, errors.New("webhook: no bearer token or basic auth configured; set one, or allow unauthenticated requests explicitly")
		}
		a.open = true
	}
	a.challenge = strings.Join(challenges, ", ")
	return a, nil
}

// digest hashes a secret so that comparisons take the same time whatever its length.
func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

func (a authenticator) check(r *http.Request) authResult {
	if a.open {
		return authOK
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return authMissing
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && a.bearer != nil:
		if subtle.ConstantTimeCompare(digest(cred), a.bearer) == 1 {
			return authOK
		}
	case strings.EqualFold(scheme, "Basic") && a.basicUser != nil:
		user, pass, ok := r.BasicAuth()
		if !ok {
			return authWrong
		}
		// Both compares always run, so timing does not tell which one failed.
		u := subtle.ConstantTimeCompare(digest(user), a.basicUser)
		p := subtle.ConstantTimeCompare(digest(pass), a.basicPass)
		if u&p == 1 {
			return authOK
		}
	default:
		// A scheme this handler does not accept is as good as no credentials.
		return authMissing
	}
	return authWrong
}
