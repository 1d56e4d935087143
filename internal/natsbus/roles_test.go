package natsbus_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
)

// probe is a connection in one role that records the permission
// violations the server reports to it.
type probe struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	denied chan string // the texts of the violations, lower-cased
}

func connectProbe(t *testing.T, srv *natstest.Server, role natsbus.Role) *probe {
	t.Helper()
	p := &probe{denied: make(chan string, 64)}
	p.nc, p.js = srv.ConnectAs(t, role, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			p.denied <- strings.ToLower(err.Error())
		}
	}))
	return p
}

// waitDenied waits until the server refuses op on subject, and fails the
// test if it does not.
func (p *probe) waitDenied(t *testing.T, op, subject string) {
	t.Helper()
	want := strings.ToLower(fmt.Sprintf("%s to %q", op, subject))
	timeout := time.After(10 * time.Second)
	for {
		select {
		case text := <-p.denied:
			if strings.Contains(text, want) {
				return
			}
		case <-timeout:
			t.Fatalf("the server did not refuse %s to %s", op, subject)
		}
	}
}

// attempt sends data to subject as a request and waits for the server's
// verdict: a permission violation passes, any answer (the action was
// carried out) fails the test.
func (p *probe) attempt(t *testing.T, subject string, data []byte, header nats.Header) {
	t.Helper()
	inbox := p.nc.NewRespInbox()
	answers, err := p.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = answers.Unsubscribe() }()
	msg := &nats.Msg{Subject: subject, Reply: inbox, Data: data, Header: header}
	if err := p.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	want := strings.ToLower(fmt.Sprintf("publish to %q", subject))
	timeout := time.After(10 * time.Second)
	for {
		select {
		case text := <-p.denied:
			if strings.Contains(text, want) {
				return
			}
		case <-timeout:
			t.Fatalf("%s: neither answered nor refused", subject)
		default:
		}
		if m, err := answers.NextMsg(10 * time.Millisecond); err == nil {
			t.Fatalf("%s was carried out: the server answered %q", subject, m.Data)
		}
	}
}

// world is a server with the streams, partition consumers and membership
// bucket a running service has, one stored request and one dead letter.
type world struct {
	srv     *natstest.Server
	worker  *probe
	kv      jetstream.KeyValue
	request transfer.Request
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := testCtx(t)
	w := &world{srv: natstest.StartWith(t, natstest.Options{Auth: true})}
	w.worker = connectProbe(t, w.srv, natsbus.RoleWorker)
	cfg := natsbus.Config{Partitions: 4}
	if err := natsbus.EnsureStreams(ctx, w.worker.js, cfg); err != nil {
		t.Fatal(err)
	}
	if err := natsbus.EnsureConsumers(ctx, w.worker.js, natsbus.ConsumerConfig{
		Partitions: 4, MaxAckPending: 10, AckWait: time.Second, PinnedTTL: 2 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	var err error
	w.kv, err = w.worker.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: natsbus.MembersBucket, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.kv.Put(ctx, "worker-1", []byte("alive")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.worker.js.Publish(ctx, natsbus.DeadLetterPrefix+"malformed_json.1", []byte("a poison body")); err != nil {
		t.Fatal(err)
	}
	w.request = transfer.Request{
		ID: uuid.New(), Kind: transfer.KindDeposit, To: uuid.New(),
		Amount: decimal.RequireFromString("10"), Currency: "USD",
	}
	producer := connectProbe(t, w.srv, natsbus.RoleProducer)
	bus, err := natsbus.Open(ctx, producer.js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.PublishRequest(ctx, w.request, ""); err != nil {
		t.Fatal(err)
	}
	return w
}

// checkUnchanged fails the test if anything the forged traffic aimed at
// has changed: no outcome, no new member, streams and consumers intact.
func (w *world) checkUnchanged(t *testing.T, forgedID uuid.UUID, deadLetters uint64) {
	t.Helper()
	ctx := testCtx(t)
	js := w.worker.js
	results, err := js.Stream(ctx, natsbus.ResultsStream)
	if err != nil {
		t.Fatalf("results stream: %v", err)
	}
	for _, subj := range []string{natsbus.ResultSubject(forgedID), natsbus.ConflictSubject(forgedID)} {
		if m, err := results.GetLastMsgForSubject(ctx, subj); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("a forged message is stored on %s: %v %v", subj, m, err)
		}
	}
	// Listed as the workers list each other: one stream info.
	kvStream, err := js.Stream(ctx, "KV_"+natsbus.MembersBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := kvStream.Info(ctx, jetstream.WithSubjectFilter("$KV."+natsbus.MembersBucket+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 || info.State.Subjects["$KV."+natsbus.MembersBucket+".worker-1"] != 1 {
		t.Errorf("members %v, want only worker-1", info.State.Subjects)
	}
	for name, msgs := range map[string]uint64{
		natsbus.RequestsStream: 1, natsbus.DeadLetterStream: deadLetters, natsbus.ResultsStream: 0, "KV_" + natsbus.MembersBucket: 1,
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		if got := s.CachedInfo().State.Msgs; got != msgs {
			t.Errorf("stream %s holds %d messages, want %d", name, got, msgs)
		}
		if name == natsbus.RequestsStream && s.CachedInfo().Config.MaxMsgs != natsbus.DefaultRequestsMaxMsgs {
			t.Errorf("requests stream reconfigured: max msgs %d", s.CachedInfo().Config.MaxMsgs)
		}
		if n := s.CachedInfo().State.Consumers; (name == natsbus.DeadLetterStream || name == natsbus.ResultsStream) && n != 0 {
			t.Errorf("stream %s has %d consumers", name, n)
		}
	}
	requests, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	for p := range 4 {
		c, err := requests.Consumer(ctx, natsbus.ConsumerName(p))
		if err != nil {
			t.Errorf("consumer %s: %v", natsbus.ConsumerName(p), err)
			continue
		}
		if n := c.CachedInfo().NumAckPending; n != 0 {
			t.Errorf("consumer %s has %d deliveries in other hands", natsbus.ConsumerName(p), n)
		}
	}
}

// TestForgedTraffic has a producer, and the gateway, try every subject
// that would let them fool or stop the service: forge an outcome or a
// conflict notice, join or empty the membership, delete, purge or
// reconfigure a stream, take a partition's deliveries, consume dead
// letters (and, for a producer, read them or the partitions' state at
// all). Each attempt must be refused by the server and leave no trace.
func TestForgedTraffic(t *testing.T) {
	for _, role := range []natsbus.Role{natsbus.RoleProducer, natsbus.RoleGateway} {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := connectProbe(t, w.srv, role)
			forgedID := uuid.New()
			result, err := natsbus.EncodeResult(natsbus.Result{
				V: natsbus.Version, ID: forgedID, Kind: transfer.KindDeposit, Status: transfer.StatusApplied,
				AccountID: uuid.New(), Amount: "1000000.00", Currency: "USD",
			})
			if err != nil {
				t.Fatal(err)
			}
			msgID := nats.Header{natsbus.HeaderMsgID: []string{forgedID.String()}}
			purgeKey := nats.Header{"KV-Operation": []string{"PURGE"}}
			requestsCfg, err := natsbus.RequestsStreamConfig(natsbus.Config{Partitions: 4, RequestsMaxMsgs: 1})
			if err != nil {
				t.Fatal(err)
			}
			reconfig, _ := json.Marshal(requestsCfg)
			snoop, _ := json.Marshal(map[string]any{"stream_name": natsbus.DeadLetterStream,
				"config": map[string]any{"name": "snoop", "deliver_policy": "all", "ack_policy": "none"}})
			// A push consumer's deliver subject is a publish by proxy: it
			// would copy real outcomes onto the subject of another id.
			proxy, _ := json.Marshal(map[string]any{"stream_name": natsbus.ResultsStream,
				"config": map[string]any{"name": "proxy", "deliver_subject": natsbus.ResultSubject(forgedID), "ack_policy": "none"}})
			attempts := []struct {
				name, subject string
				data          []byte
				header        nats.Header
			}{
				{"publish an outcome", natsbus.ResultSubject(forgedID), result, msgID},
				{"publish a conflict notice", natsbus.ConflictSubject(forgedID), result, nil},
				{"join the membership", "$KV." + natsbus.MembersBucket + ".fake-worker", []byte("alive"), nil},
				{"remove a member", "$KV." + natsbus.MembersBucket + ".worker-1", nil, purgeKey},
				{"purge the membership", "$JS.API.STREAM.PURGE.KV_" + natsbus.MembersBucket, []byte(`{}`), nil},
				{"purge the requests", "$JS.API.STREAM.PURGE." + natsbus.RequestsStream, []byte(`{}`), nil},
				{"purge the dead letters", "$JS.API.STREAM.PURGE." + natsbus.DeadLetterStream, []byte(`{}`), nil},
				{"delete a request", "$JS.API.STREAM.MSG.DELETE." + natsbus.RequestsStream, []byte(`{"seq":1}`), nil},
				{"reconfigure the requests stream", "$JS.API.STREAM.UPDATE." + natsbus.RequestsStream, reconfig, nil},
				{"delete the requests stream", "$JS.API.STREAM.DELETE." + natsbus.RequestsStream, nil, nil},
				{"delete the results stream", "$JS.API.STREAM.DELETE." + natsbus.ResultsStream, nil, nil},
				{"delete the dead letters", "$JS.API.STREAM.DELETE." + natsbus.DeadLetterStream, nil, nil},
				{"delete the membership", "$JS.API.STREAM.DELETE.KV_" + natsbus.MembersBucket, nil, nil},
				{"delete a partition consumer", "$JS.API.CONSUMER.DELETE." + natsbus.RequestsStream + ".wallet-p00", nil, nil},
				{"pull a partition", "$JS.API.CONSUMER.MSG.NEXT." + natsbus.RequestsStream + ".wallet-p00", []byte(`{"batch":10,"expires":1000000000}`), nil},
				{"unpin a partition", "$JS.API.CONSUMER.UNPIN." + natsbus.RequestsStream + ".wallet-p00", []byte(`{"group":"wallet"}`), nil},
				{"ack a delivery", "$JS.ACK." + natsbus.RequestsStream + ".wallet-p00.1.1.1.0.0", []byte("+ACK"), nil},
				{"read a dead letter", "$JS.API.STREAM.MSG.GET." + natsbus.DeadLetterStream, []byte(`{"seq":1}`), nil},
				{"consume the dead letters", "$JS.API.CONSUMER.CREATE." + natsbus.DeadLetterStream + ".snoop", snoop, nil},
				{"copy outcomes onto another id", "$JS.API.CONSUMER.CREATE." + natsbus.ResultsStream + ".proxy", proxy, nil},
			}
			if role == natsbus.RoleProducer {
				// The gateway reads dead letters for its console, directly
				// and read-only; a producer may not.
				attempts = append(attempts, []struct {
					name, subject string
					data          []byte
					header        nats.Header
				}{
					{"read a dead letter directly", "$JS.API.DIRECT.GET." + natsbus.DeadLetterStream, []byte(`{"seq":1}`), nil},
					{"read the last dead letter", "$JS.API.DIRECT.GET." + natsbus.DeadLetterStream + "." + natsbus.DeadLetterPrefix + "malformed_json.1", nil, nil},
					{"list the partition consumers", "$JS.API.CONSUMER.LIST." + natsbus.RequestsStream, []byte(`{}`), nil},
					{"read a heartbeat", "$JS.API.DIRECT.GET.KV_" + natsbus.MembersBucket + ".$KV." + natsbus.MembersBucket + ".worker-1", nil, nil},
				}...)
			}
			for _, a := range attempts {
				t.Run(a.name, func(t *testing.T) { p.attempt(t, a.subject, a.data, a.header) })
			}

			// Dead letters cannot be read by subscribing either.
			deadLetters, err := p.nc.SubscribeSync(natsbus.DeadLetterPrefix + ">")
			if err != nil {
				t.Fatal(err)
			}
			p.waitDenied(t, "subscription", natsbus.DeadLetterPrefix+">")
			if _, err := w.worker.js.Publish(testCtx(t), natsbus.DeadLetterPrefix+"malformed_json.2", []byte("another")); err != nil {
				t.Fatal(err)
			}
			if m, err := deadLetters.NextMsg(200 * time.Millisecond); err == nil {
				t.Errorf("read a dead letter by subscribing: %q", m.Data)
			}
			// Nor the membership bucket's changes.
			if _, err := p.nc.SubscribeSync("$KV." + natsbus.MembersBucket + ".>"); err != nil {
				t.Fatal(err)
			}
			p.waitDenied(t, "subscription", "$KV."+natsbus.MembersBucket+".>")

			// The worker's second dead letter is the only change.
			w.checkUnchanged(t, forgedID, 2)
			select {
			case text := <-w.worker.denied:
				t.Errorf("the worker was refused something: %s", text)
			default:
			}
		})
	}
}

// TestProducerRole checks that the producer role is enough for what
// docs/messaging.md tells producers to do: publish a request, find it
// pending, watch for its outcome and read it back.
func TestProducerRole(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	w := newWorld(t)
	p := connectProbe(t, w.srv, natsbus.RoleProducer)
	if _, err := p.js.AccountInfo(ctx); err != nil {
		t.Fatalf("account info: %v", err)
	}
	bus, err := natsbus.Open(ctx, p.js)
	if err != nil {
		t.Fatal(err)
	}
	r := transfer.Request{
		ID: uuid.New(), Kind: transfer.KindWithdrawal, From: uuid.New(),
		Amount: decimal.RequireFromString("2.50"), Currency: "EUR",
	}
	watch, err := p.nc.SubscribeSync(natsbus.ResultSubject(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := bus.PublishRequest(ctx, r, "trace-1"); err != nil || ack.Duplicate {
		t.Fatalf("publish: %v %v", ack, err)
	}
	if _, found, err := bus.LookupPending(ctx, r.ID); err != nil || !found {
		t.Fatalf("lookup pending: found %v, %v", found, err)
	}
	// The worker decides it.
	data, err := natsbus.EncodeResult(natsbus.Result{
		V: natsbus.Version, ID: r.ID, Kind: r.Kind, Status: transfer.StatusRejected,
		Reason: transfer.CodeInsufficientFunds, AccountID: r.From, Amount: "2.50", Currency: "EUR",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.worker.js.Publish(ctx, natsbus.ResultSubject(r.ID), data); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("watching the outcome: %v", err)
	}
	res, found, err := bus.LookupResult(ctx, r.ID)
	if err != nil || !found || res.Reason != transfer.CodeInsufficientFunds {
		t.Fatalf("lookup result: %+v %v %v", res, found, err)
	}
	select {
	case text := <-p.denied:
		t.Errorf("the producer was refused something: %s", text)
	default:
	}
}

// TestGatewayCreatesMissingStreams: the gateway role may create the streams
// when it starts first, and leaves the workers' settings alone after.
func TestGatewayCreatesMissingStreams(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := natstest.StartWith(t, natstest.Options{Auth: true})
	gw := connectProbe(t, srv, natsbus.RoleGateway)
	if err := natsbus.CreateStreams(ctx, gw.js, natsbus.Config{Partitions: 4}); err != nil {
		t.Fatalf("create streams as the gateway: %v", err)
	}
	wk := connectProbe(t, srv, natsbus.RoleWorker)
	if err := natsbus.EnsureStreams(ctx, wk.js, natsbus.Config{Partitions: 4, RequestsMaxMsgs: 500}); err != nil {
		t.Fatalf("update streams as a worker: %v", err)
	}
	// A gateway with other settings starts again: nothing changes.
	if err := natsbus.CreateStreams(ctx, gw.js, natsbus.Config{Partitions: 4, RequestsMaxMsgs: 7}); err != nil {
		t.Fatal(err)
	}
	s, err := wk.js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxMsgs; got != 500 {
		t.Errorf("requests stream max msgs %d, want the worker's 500", got)
	}
	if err := natsbus.CreateStreams(ctx, gw.js, natsbus.Config{Partitions: 8}); !errors.Is(err, natsbus.ErrPartitionMismatch) {
		t.Errorf("another partition count: %v, want ErrPartitionMismatch", err)
	}
	for _, p := range []*probe{gw, wk} {
		select {
		case text := <-p.denied:
			t.Errorf("refused: %s", text)
		default:
		}
	}
}
