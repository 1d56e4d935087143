package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// forger is a connection with the producer's credentials that tries what
// the role forbids, and collects the server's refusals.
type forger struct {
	nc     *nats.Conn
	denied chan string // permission violations, lower-cased
}

func newForger(t *testing.T, c *cluster, name string) *forger {
	f := &forger{denied: make(chan string, 256)}
	c.forgers = append(c.forgers, name)
	f.nc, _ = c.nats.connect(t, name, c.nats.credential(natsbus.RoleProducer), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			f.denied <- strings.ToLower(err.Error())
		}
	}))
	return f
}

// attempt publishes data to subject as a request and waits for the
// server's verdict: a refusal is what must happen; an answer means the
// server carried the message to someone (a stream, a JetStream API), and
// silence means neither.
func (f *forger) attempt(subject string, data []byte, header nats.Header) error {
	inbox := f.nc.NewRespInbox()
	answers, err := f.nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = answers.Unsubscribe() }()
	if err := f.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: inbox, Data: data, Header: header}); err != nil {
		return err
	}
	want := strings.ToLower(fmt.Sprintf("publish to %q", subject))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case text := <-f.denied:
			if strings.Contains(text, want) {
				return nil
			}
			continue
		default:
		}
		if m, err := answers.NextMsg(20 * time.Millisecond); err == nil {
			return fmt.Errorf("carried out: the server answered %q", truncateLine(string(m.Data)))
		}
	}
	return errors.New("neither refused nor answered")
}

// subscribe tries to subscribe to subject and waits for the refusal.
func (f *forger) subscribe(subject string) error {
	sub, err := f.nc.SubscribeSync(subject)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	want := strings.ToLower(fmt.Sprintf("subscription to %q", subject))
	timeout := time.After(10 * time.Second)
	for {
		select {
		case text := <-f.denied:
			if strings.Contains(text, want) {
				return nil
			}
		case <-timeout:
			return errors.New("subscription not refused")
		}
	}
}

// natsState is what forged traffic could change: each stream's
// configuration and the dead letters it holds, the partition consumers and
// whether they are paused, and the members of the membership bucket.
type natsState struct {
	Configs     map[string]string
	DeadLetters uint64
	Consumers   []string
	Paused      []string
	Members     []string
}

func readNATSState(ctx context.Context, js jetstream.JetStream) (natsState, error) {
	st := natsState{Configs: map[string]string{}}
	for _, name := range []string{natsbus.RequestsStream, natsbus.ResultsStream, natsbus.DeadLetterStream, "KV_" + natsbus.MembersBucket} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return st, fmt.Errorf("stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		cfg, _ := json.Marshal(info.Config)
		st.Configs[name] = string(cfg)
		if name == natsbus.DeadLetterStream {
			st.DeadLetters = info.State.Msgs
		}
		if name != natsbus.RequestsStream {
			continue
		}
		lister := s.ListConsumers(ctx)
		for ci := range lister.Info() {
			st.Consumers = append(st.Consumers, ci.Name)
			if ci.Paused {
				st.Paused = append(st.Paused, ci.Name)
			}
		}
		if err := lister.Err(); err != nil {
			return st, err
		}
	}
	kv, err := js.KeyValue(ctx, natsbus.MembersBucket)
	if err != nil {
		return st, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return st, err
	}
	for k := range keys.Keys() {
		st.Members = append(st.Members, k)
	}
	sort.Strings(st.Consumers)
	sort.Strings(st.Members)
	return st, nil
}

// TestForgedTraffic runs the service with NATS configured as deployed (a
// user per role) and has a client with the producer's credentials try
// every subject it should not: forge outcomes and conflict notices (of a
// decided id and of one requested right after), write dead letters, join
// or empty the membership, purge, delete or reconfigure any stream, take,
// pause, delete or ack a partition's consumer, read dead letters in every
// way the API offers, and subscribe to what is not its own. The server
// must refuse each, and afterwards nothing may have changed: the ids'
// outcomes are the workers', the members, streams and consumers are as
// they were, every partition is served, the books are right, and the
// services were never refused anything themselves.
func TestForgedTraffic(t *testing.T) {
	t.Parallel()
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0xf06e))
	c := startCluster(t, clusterConfig{Gateways: 1, Workers: 2})
	r := newRun(t, c, rng, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	model := newLoadModel(rand.New(rand.NewPCG(rng.Uint64(), 4)), r.world, 0, 0, 0)
	funding := model.fundingOps()
	r.submitAll(ctx, funding)
	decided := funding[0]
	// A dead letter, so that reading one is a real attempt.
	acct := r.world.Probes[0]
	poison := nats.NewMsg(natsbus.RequestSubject(acct.ID, uuid.New()))
	poison.Data = []byte("not a request")
	poison.Header.Set(natsbus.HeaderMsgID, "forged-poison")
	if _, err := r.sub.js[0].PublishMsg(ctx, poison); err != nil {
		t.Fatal(err)
	}
	if err := r.waitDecided(ctx, []uuid.UUID{decided.ID}); err != nil {
		t.Fatal(err)
	}
	var before natsState
	for {
		var err error
		if before, err = readNATSState(ctx, r.js); err != nil {
			t.Fatal(err)
		}
		if before.DeadLetters > 0 && len(before.Members) == len(c.workers) {
			break
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			t.Fatalf("no dead letter or not every worker a member: %+v", before)
		}
	}

	// Anything that reaches another client's reply inbox. The producer
	// role may subscribe to _INBOX.> (its own JetStream replies arrive
	// there): it sees the other producers' replies, but the workers and
	// the gateway reply on inboxes of their own, so not one request
	// delivered to a worker may reach it.
	var snooped, deliveries atomic.Int64
	snoop := newForger(t, c, "forger-inbox")
	ownInbox := snoop.nc.NewRespInbox()
	ownPrefix := ownInbox[:strings.LastIndex(ownInbox, ".")]
	if _, err := snoop.nc.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if !strings.HasPrefix(m.Subject, ownPrefix) {
			snooped.Add(1)
		}
		// A request delivered to a worker's pull: its reply is the ack
		// subject of a partition consumer.
		if strings.HasPrefix(m.Reply, "$JS.ACK."+natsbus.RequestsStream+".") {
			deliveries.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}

	f := newForger(t, c, "forger")
	forgedID := uuid.New()
	forgedResult, err := natsbus.EncodeResult(natsbus.Result{
		V: natsbus.Version, ID: forgedID, Kind: transfer.KindDeposit, Status: transfer.StatusApplied,
		AccountID: acct.ID, Amount: "1000000.00", Currency: acct.Currency,
	})
	if err != nil {
		t.Fatal(err)
	}
	rejectDecided, err := natsbus.EncodeResult(natsbus.Result{
		V: natsbus.Version, ID: decided.ID, Kind: decided.Kind, Status: transfer.StatusRejected,
		Reason: transfer.CodeAccountNotExist, AccountID: decided.To, Amount: decided.Amount, Currency: decided.Currency,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgID := func(id string) nats.Header { return nats.Header{natsbus.HeaderMsgID: []string{id}} }
	kvPurge := nats.Header{"KV-Operation": []string{"PURGE"}}
	steal, _ := json.Marshal(map[string]any{"stream_name": natsbus.RequestsStream, "config": map[string]any{
		"durable_name": "stolen", "filter_subject": natsbus.PartitionFilter(0), "deliver_policy": "all", "ack_policy": "explicit"}})
	snoopDL, _ := json.Marshal(map[string]any{"stream_name": natsbus.DeadLetterStream, "config": map[string]any{
		"name": "snoop", "deliver_policy": "all", "ack_policy": "none"}})
	proxy, _ := json.Marshal(map[string]any{"stream_name": natsbus.ResultsStream, "config": map[string]any{
		"name": "proxy", "deliver_subject": natsbus.ResultSubject(forgedID), "ack_policy": "none"}})
	pause, _ := json.Marshal(map[string]any{"pause_until": time.Now().Add(time.Hour)})
	newStream, _ := json.Marshal(map[string]any{"name": "FORGED", "subjects": []string{"forged.>"}})

	type attempt struct {
		what, subject string
		data          []byte
		header        nats.Header
	}
	attempts := []attempt{
		{"forge the outcome of an id requested next", natsbus.ResultSubject(forgedID), forgedResult, msgID(forgedID.String())},
		{"forge the outcome of a decided id", natsbus.ResultSubject(decided.ID), rejectDecided, msgID(decided.ID.String() + ".decision.2")},
		{"forge a conflict notice", natsbus.ConflictSubject(decided.ID), rejectDecided, nil},
		{"write a dead letter", natsbus.DeadLetterPrefix + "malformed_json.forged", []byte("forged"), nil},
		{"join the membership", "$KV." + natsbus.MembersBucket + ".forged-worker", []byte("alive"), nil},
		{"remove a member", "$KV." + natsbus.MembersBucket + "." + before.Members[0], nil, kvPurge},
		{"create a stream", "$JS.API.STREAM.CREATE.FORGED", newStream, nil},
		{"read the dead letters' stream info", "$JS.API.STREAM.INFO." + natsbus.DeadLetterStream, nil, nil},
		{"read a dead letter directly", "$JS.API.DIRECT.GET." + natsbus.DeadLetterStream, []byte(`{"seq":1}`), nil},
		{"read the last dead letter of a reason", "$JS.API.DIRECT.GET." + natsbus.DeadLetterStream + "." + natsbus.DeadLetterPrefix + "malformed_json.x", nil, nil},
		{"read a dead letter by sequence", "$JS.API.STREAM.MSG.GET." + natsbus.DeadLetterStream, []byte(`{"seq":1}`), nil},
		{"consume the dead letters", "$JS.API.CONSUMER.CREATE." + natsbus.DeadLetterStream + ".snoop", snoopDL, nil},
		{"snapshot the dead letters", "$JS.API.STREAM.SNAPSHOT." + natsbus.DeadLetterStream, []byte(`{"deliver_subject":"_INBOX.snap"}`), nil},
		{"copy outcomes onto another id", "$JS.API.CONSUMER.CREATE." + natsbus.ResultsStream + ".proxy", proxy, nil},
		{"take a partition with a consumer of its own", "$JS.API.CONSUMER.CREATE." + natsbus.RequestsStream + ".stolen." + natsbus.PartitionFilter(0), steal, nil},
		{"pull a partition", "$JS.API.CONSUMER.MSG.NEXT." + natsbus.RequestsStream + "." + natsbus.ConsumerName(0), []byte(`{"batch":10,"expires":1000000000}`), nil},
		{"pause a partition", "$JS.API.CONSUMER.PAUSE." + natsbus.RequestsStream + "." + natsbus.ConsumerName(1), pause, nil},
		{"unpin a partition", "$JS.API.CONSUMER.UNPIN." + natsbus.RequestsStream + "." + natsbus.ConsumerName(2), []byte(`{"group":"` + natsbus.PriorityGroup + `"}`), nil},
		{"delete a partition consumer", "$JS.API.CONSUMER.DELETE." + natsbus.RequestsStream + "." + natsbus.ConsumerName(3), nil, nil},
		{"ack a delivery", "$JS.ACK." + natsbus.RequestsStream + "." + natsbus.ConsumerName(0) + ".1.1.1.0.0", []byte("+ACK"), nil},
		{"delete a request", "$JS.API.STREAM.MSG.DELETE." + natsbus.RequestsStream, []byte(`{"seq":1}`), nil},
		{"delete an outcome", "$JS.API.STREAM.MSG.DELETE." + natsbus.ResultsStream, []byte(`{"seq":1}`), nil},
		{"make a stream's leader step down", "$JS.API.STREAM.LEADER.STEPDOWN." + natsbus.RequestsStream, nil, nil},
	}
	for _, name := range []string{natsbus.RequestsStream, natsbus.ResultsStream, natsbus.DeadLetterStream, "KV_" + natsbus.MembersBucket} {
		// The stream's own configuration with a limit that would drop
		// almost everything.
		var cfg map[string]any
		if err := json.Unmarshal([]byte(before.Configs[name]), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["max_msgs"] = 1
		update, _ := json.Marshal(cfg)
		attempts = append(attempts,
			attempt{"purge " + name, "$JS.API.STREAM.PURGE." + name, []byte(`{}`), nil},
			attempt{"reconfigure " + name, "$JS.API.STREAM.UPDATE." + name, update, nil},
			attempt{"delete " + name, "$JS.API.STREAM.DELETE." + name, nil, nil},
		)
	}
	refused := 0
	for _, a := range attempts {
		if err := f.attempt(a.subject, a.data, a.header); err != nil {
			t.Errorf("a producer could %s (%s): %v", a.what, a.subject, err)
			continue
		}
		refused++
	}
	for _, subject := range []string{natsbus.DeadLetterPrefix + ">", "$KV." + natsbus.MembersBucket + ".>",
		natsbus.RequestsPrefix + ">", "$JS.ACK.>", ">",
		natsbus.RoleWorker.InboxPrefix() + ".>", natsbus.RoleGateway.InboxPrefix() + ".>"} {
		if err := f.subscribe(subject); err != nil {
			t.Errorf("a producer could subscribe to %s: %v", subject, err)
			continue
		}
		refused++
	}
	t.Logf("%d forged publishes and subscriptions, %d refused by the server", len(attempts)+5, refused)

	// The id whose outcome was forged is now requested for real: its one
	// outcome is the worker's.
	real := &op{ID: forgedID, Kind: transfer.KindDeposit, To: acct.ID, Amount: "1", Currency: acct.Currency,
		Route: viaNATS, MayApply: true}
	r.sub.submit(ctx, real)
	if err := r.waitDecided(ctx, []uuid.UUID{forgedID}); err != nil {
		t.Fatal(err)
	}
	// Every partition is still served.
	if d, err := r.probe(ctx, viaNATS); err != nil {
		t.Errorf("partitions not served after the forged traffic: %v", err)
	} else {
		t.Logf("every partition served %s after the forged traffic", d.Round(time.Millisecond))
	}
	after, err := readNATSState(ctx, r.js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("forged traffic changed NATS:\nbefore %+v\nafter  %+v", before, after)
	}
	if err := r.quiesce(ctx); err != nil {
		t.Errorf("quiesce: %v", err)
	}
	conn, err := c.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The book check reads the results stream: one outcome per decided
	// id, the database's (so neither forged outcome is there), and no
	// conflict notice nobody caused.
	rep, err := checkBook(ctx, conn, r.js, r.rec, checkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, crash := range c.crashes() {
		rep.Violations.add(checkCrash, "%s", crash)
	}
	if n := len(c.nats.violations()) - len(c.nats.violations("forger")); n < refused {
		rep.Violations.add(checkCrash, "the server logged %d refusals of the forger, want at least %d", n, refused)
	}
	t.Logf("book:\n%s", rep)
	if rep.Violations.total() != 0 {
		t.Errorf("violations (seed %d):%s", s, rep.Violations)
	}
	t.Logf("a producer subscribed to _INBOX.> read %d replies meant for other producers, and %d requests delivered to workers",
		snooped.Load(), deliveries.Load())
	if deliveries.Load() != 0 {
		t.Errorf("a producer read %d requests delivered to the workers on _INBOX.>", deliveries.Load())
	}
}
