// How a relay ended: one function, decideEnd, says what the bridge does
// to the other side when one direction ends, and then what the connection
// reports (who ended it, the close code, the error, the log level, the
// close status counted in metrics).

package bridge

import (
	"errors"
	"log/slog"

	"github.com/coder/websocket"
)

// Close statuses RFC 6455 reserves for reporting, never sent on the wire:
// a close without a code and a connection that ended without a closing
// handshake. Metrics count them like the codes that were exchanged.
const (
	statusNoStatus = websocket.StatusNoStatusRcvd // 1005
	statusAbnormal = websocket.StatusAbnormalClosure
)

// closeFrame is a close code and reason.
type closeFrame struct {
	code   websocket.StatusCode
	reason string
}

// protocolError is a client's protocol violation that the adapter has
// answered with a close code (1003 text in binary mode, 1007 bad base64).
type protocolError struct {
	closeFrame
	err error
}

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

// abortCause is why abort ended a relay from outside (idle timeout, dead
// peer, shutdown): the code sent to the client (0: dropped without a
// closing handshake), its reason, and an error for the log.
type abortCause struct {
	closeFrame
	err error
}

// endInput is what is known about a relay's end when decideEnd is asked.
type endInput struct {
	first    halfResult  // the direction that ended first
	second   *halfResult // the other one; nil while it still runs
	abort    *abortCause // set when abort ended the relay
	received *closeFrame // what the client's close frame said, if it sent one
}

// targetAction is what happens to the target's connection as soon as the
// first direction ended.
type targetAction int

const (
	// targetKeep leaves it: the other direction goes on relaying.
	targetKeep targetAction = iota
	// targetStopReads ends targetToClient with a read deadline in the
	// past but leaves the socket open, for run to drain it.
	targetStopReads
	// targetBoundWrites keeps the target running but bounds a write to it
	// that could block forever (targetDrainTimeout).
	targetBoundWrites
	// targetClose closes it at once.
	targetClose
)

// endDecision is how a relay ends.
type endDecision struct {
	// Decided when the first direction ends.
	send   closeFrame   // sent to the client; code 0 closes without one
	target targetAction // what happens to the target's connection now

	// Decided once both directions ended (endInput.second set).
	shutTargetWrite bool                 // run calls drainTarget: the target reads EOF after the client's last byte
	endedBy         string               // endClient, endTarget or endBridge
	close           closeFrame           // the close code exchanged (sent or received), for the log; code 0: none
	status          websocket.StatusCode // for metrics: close.code, or 1005 (clean, no code) or 1006 (no closing handshake)
	err             error                // what ended it, if not a clean close
	level           slog.Level           // of the connection's log line
}

// decideEnd decides how a relay ends. Called with in.second nil when the
// first direction ends, it fills send and target (react acts on them);
// called again once both ended, it fills everything, with the same send
// and target. The cases, by the direction that ended first:
//
//   - client, clean close: the client is closed (no code to send: it
//     closed first) and the target's reads stop; at the end the target's
//     write side is shut so it reads everything the client sent, then EOF.
//   - client, write to the target failed: 1011 "target connection failed"
//     to the client, the target closed; the target ended it.
//   - client, any other error (gone, or a protocol violation the adapter
//     has already answered with its code): both closed; the client ended it.
//   - target, clean EOF: 1000 "target closed" to the client, whose last
//     bytes still go to the target until it answers the close; when it
//     answers cleanly, the target's write side is shut.
//   - target, write to the client failed: the client is closed (gone, or
//     closed cleanly under the write by its own close frame, which the
//     other direction reads: then no error); the target keeps running with
//     bounded writes so it can be drained after a clean close.
//   - target, any other error: 1011 "target connection failed", both closed.
//
// When the client ended the connection, the code is the one its close
// frame gave, or the one the adapter sent for a protocol violation. An abort overrides all of it: the bridge ended it with the
// abort's code, and the target is not drained (abort closed it).
func decideEnd(in endInput) endDecision {
	d := firstReaction(in.first)
	if in.second == nil {
		return d
	}
	second := *in.second
	clientCleanAfter := second.fromClient && second.eof
	switch {
	case in.first.fromClient && in.first.eof:
		d.shutTargetWrite = true
	case !in.first.fromClient && in.first.eof:
		d.shutTargetWrite = clientCleanAfter
	case !in.first.fromClient && errors.Is(in.first.err, errClientWrite):
		switch {
		case clientCleanAfter:
			// The write failed because the client's clean close, read by
			// the other direction, closed the connection under it.
			d.err, d.shutTargetWrite = nil, true
		case second.fromClient && second.err != nil && !errors.Is(second.err, errTargetWrite):
			// The client adapter closed the connection on a protocol
			// violation (bad base64, an oversized frame) while this
			// direction was writing to it: the violation is the cause.
			d.err = second.err
		}
	}
	var violation *protocolError
	switch {
	case d.endedBy != endClient:
	case in.received != nil:
		d.close = *in.received
	case errors.As(d.err, &violation):
		d.close = violation.closeFrame // the code the adapter sent
	}
	if in.abort != nil {
		d.endedBy, d.close, d.err = endBridge, in.abort.closeFrame, in.abort.err
		d.shutTargetWrite = false
	}
	d.status = d.close.code
	if d.status == 0 {
		d.status = statusAbnormal
		if d.err == nil && d.endedBy == endClient {
			d.status = statusNoStatus
		}
	}
	d.level = slog.LevelInfo
	if d.err != nil && d.endedBy != endClient {
		d.level = slog.LevelWarn
	}
	return d
}

// firstReaction is decideEnd's first half: what the first direction's
// end says, before the other direction has ended.
func firstReaction(first halfResult) endDecision {
	d := endDecision{}
	switch {
	case first.fromClient && first.eof:
		d.endedBy, d.target = endClient, targetStopReads
	case first.fromClient && errors.Is(first.err, errTargetWrite):
		d.endedBy, d.err, d.target = endTarget, first.err, targetClose
		d.send = closeFrame{websocket.StatusInternalError, "target connection failed"}
	case first.fromClient:
		d.endedBy, d.err, d.target = endClient, first.err, targetClose
	case first.eof:
		d.endedBy, d.target = endTarget, targetKeep
		d.send = closeFrame{websocket.StatusNormalClosure, "target closed"}
	case errors.Is(first.err, errClientWrite):
		d.endedBy, d.err, d.target = endClient, first.err, targetBoundWrites
	default:
		d.endedBy, d.err, d.target = endTarget, first.err, targetClose
		d.send = closeFrame{websocket.StatusInternalError, "target connection failed"}
	}
	d.close = d.send
	return d
}
