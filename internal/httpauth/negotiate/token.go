package negotiate

import (
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// maxTokenSize bounds a token taken from a proxy's header. Real AP-REPs
// are a few hundred bytes; the response header itself is capped higher up.
const maxTokenSize = 64 << 10

// initToken is what Start sends and what Verify needs to check the answer.
type initToken struct {
	Token      []byte              // the SPNEGO NegTokenInit, GSS-framed
	SessionKey types.EncryptionKey // the service ticket's session key
	CTime      time.Time           // the authenticator's time, echoed in the AP-REP
	Cusec      int
}

// newInitToken builds the SPNEGO NegTokenInit carrying a Kerberos AP-REQ for
// tkt, asking for mutual authentication (RFC 4121 checksum flags and the
// AP-REQ's mutual-required option), as browsers do.
func newInitToken(cl *client.Client, tkt messages.Ticket, key types.EncryptionKey) (initToken, error) {
	mt, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key,
		[]int{gssapi.ContextFlagMutual, gssapi.ContextFlagInteg, gssapi.ContextFlagConf},
		[]int{flags.APOptionMutualRequired})
	if err != nil {
		return initToken{}, fmt.Errorf("building the AP-REQ: %w", err)
	}
	// The authenticator's time identifies the answer; read it back rather
	// than building the authenticator twice.
	if err := mt.APReq.DecryptAuthenticator(key); err != nil {
		return initToken{}, fmt.Errorf("reading back the authenticator: %w", err)
	}
	mtb, err := mt.Marshal()
	if err != nil {
		return initToken{}, fmt.Errorf("encoding the Kerberos token: %w", err)
	}
	st := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes:      []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()},
		MechTokenBytes: mtb,
	}}
	b, err := st.Marshal()
	if err != nil {
		return initToken{}, fmt.Errorf("encoding the SPNEGO token: %w", err)
	}
	return initToken{Token: b, SessionKey: key, CTime: mt.APReq.Authenticator.CTime, Cusec: mt.APReq.Authenticator.Cusec}, nil
}

// answer is a proxy's Negotiate token, parsed.
type answer struct {
	State    spnego.NegState       // NegStateAcceptCompleted when the token was raw Kerberos
	APRep    *messages.APRep       // the mutual-authentication reply, when present
	KRBError *messages.KRBError    // a Kerberos error from the acceptor, when present
	Mech     asn1.ObjectIdentifier // the mechanism the proxy chose, when it said
}

var errAnswerFormat = errors.New("not a SPNEGO or Kerberos answer token")

// parseAnswer parses the token of a proxy's "Proxy-Authenticate: Negotiate
// <token>": a SPNEGO NegTokenResp (RFC 4178), or a bare GSS Kerberos token
// (RFC 4121) from acceptors that answer without SPNEGO. It never panics and
// refuses tokens over maxTokenSize.
func parseAnswer(b []byte) (a answer, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = answer{}, fmt.Errorf("%w: malformed encoding", errAnswerFormat)
		}
	}()
	if len(b) == 0 || len(b) > maxTokenSize {
		return answer{}, fmt.Errorf("%w: %d bytes", errAnswerFormat, len(b))
	}
	switch b[0] {
	case 0xa1: // [1] NegTokenResp
		isInit, nt, err := spnego.UnmarshalNegToken(b)
		if err != nil {
			return answer{}, fmt.Errorf("%w: %v", errAnswerFormat, err)
		}
		resp, ok := nt.(spnego.NegTokenResp)
		if isInit || !ok {
			return answer{}, fmt.Errorf("%w: a NegTokenInit where a NegTokenResp belongs", errAnswerFormat)
		}
		a.State = resp.State()
		a.Mech = resp.SupportedMech
		if len(a.Mech) > 0 && !isKerberosMech(a.Mech) {
			return answer{}, fmt.Errorf("%w: mechanism %s is not Kerberos", errAnswerFormat, a.Mech)
		}
		if len(resp.ResponseToken) > 0 {
			if err := parseKerberosToken(resp.ResponseToken, &a); err != nil {
				return answer{}, err
			}
		}
		return a, nil
	case 0x60: // [APPLICATION 0] a bare GSS-API Kerberos token
		a.State = spnego.NegStateAcceptCompleted
		a.Mech = gssapi.OIDKRB5.OID()
		if err := parseKerberosToken(b, &a); err != nil {
			return answer{}, err
		}
		return a, nil
	}
	return answer{}, fmt.Errorf("%w: first byte 0x%02x", errAnswerFormat, b[0])
}

func isKerberosMech(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(gssapi.OIDKRB5.OID()) || oid.Equal(gssapi.OIDMSLegacyKRB5.OID())
}

// parseKerberosToken reads an RFC 4121 token that must hold an AP-REP or a
// KRB-ERROR; an AP-REQ in an answer is refused.
func parseKerberosToken(b []byte, a *answer) error {
	var mt spnego.KRB5Token
	if err := mt.Unmarshal(b); err != nil {
		return fmt.Errorf("%w: %v", errAnswerFormat, err)
	}
	switch {
	case mt.IsAPRep():
		a.APRep = &mt.APRep
	case mt.IsKRBError():
		a.KRBError = &mt.KRBError
	default:
		return fmt.Errorf("%w: the Kerberos token is neither an AP-REP nor an error", errAnswerFormat)
	}
	return nil
}

// verifyAPRep checks that rep was made with the session key and echoes
// the authenticator's time, which only the holder of the proxy's key can do.
func verifyAPRep(rep *messages.APRep, it initToken) error {
	plain, err := decryptAPRep(rep, it.SessionKey)
	if err != nil {
		return err
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return fmt.Errorf("the AP-REP's encrypted part is malformed")
	}
	if part.CTime.Unix() != it.CTime.Unix() || part.Cusec != it.Cusec {
		return fmt.Errorf("the AP-REP does not echo this connection's authenticator")
	}
	return nil
}

func decryptAPRep(rep *messages.APRep, key types.EncryptionKey) (plain []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			plain, err = nil, fmt.Errorf("the AP-REP could not be decrypted")
		}
	}()
	plain, err = crypto.DecryptEncPart(rep.EncPart, key, uint32(keyusage.AP_REP_ENCPART))
	if err != nil {
		return nil, fmt.Errorf("the AP-REP could not be decrypted with the session key")
	}
	return plain, nil
}
