// kpclient drives kpool with the Go clients Debian packages (Sarama 1.22, segmentio/kafka-go
// 0.2), built in GOPATH mode from /usr/share/gocode (see test_go_clients.py).
//
//	kpclient sarama  -brokers B -topic T -version 0.8.2.0|0.10.2.0 -codec none|gzip|snappy|lz4 -n N [TLS]
//	kpclient kafkago -brokers B -topic T -group G -n N [TLS]
//	TLS: -ca ca.pem -cert client.pem -key client.key
//
// Each produces N deterministic records (record(i), also known to the Python test), reads
// them back with the same client and exits 0 only when every record came back byte-identical
// (keys, null keys, values) and in order. It prints "ok <n>" on success, the first difference
// and exit status 1 otherwise.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"strings"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
	_ "github.com/segmentio/kafka-go/gzip"
	_ "github.com/segmentio/kafka-go/lz4"
	_ "github.com/segmentio/kafka-go/snappy"
)

var (
	brokers = flag.String("brokers", "", "bootstrap broker host:port list, comma-separated")
	topic   = flag.String("topic", "", "topic (one partition, created by the caller)")
	version = flag.String("version", "", "Sarama config version (empty: Sarama's default)")
	codec   = flag.String("codec", "none", "Sarama producer compression")
	group   = flag.String("group", "", "kafka-go Reader GroupID")
	count   = flag.Int("n", 500, "records")
	caFile  = flag.String("ca", "", "CA certificate (PEM): use TLS")
	cert    = flag.String("cert", "", "client certificate (PEM)")
	key     = flag.String("key", "", "client key (PEM)")
)

// record returns the i-th test record: every 7th key null, every 11th value empty, values
// binary. test_go_clients.py has the same function.
func record(i int) (k, v []byte) {
	if i%7 != 0 {
		k = []byte(fmt.Sprintf("k%d", i))
	}
	v = []byte{}
	if i%11 != 0 {
		for j := 0; j < i%64; j++ {
			v = append(v, byte((i*31+j)%256))
		}
		v = append(v, []byte(fmt.Sprintf("v%d", i))...)
	}
	return k, v
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "kpclient: "+format+"\n", a...)
	os.Exit(1)
}

func tlsConfig() *tls.Config {
	if *caFile == "" {
		return nil
	}
	pem, err := ioutil.ReadFile(*caFile)
	if err != nil {
		die("%v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// kafka-go 0.2 does not derive ServerName from the address; the broker's certificate
	// names IP:127.0.0.1
	host := strings.Split(strings.Split(*brokers, ",")[0], ":")[0]
	c := &tls.Config{RootCAs: pool, ServerName: host}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			die("%v", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c
}

func check(i int, k, v []byte, nullKeys bool) {
	wk, wv := record(i)
	if !bytes.Equal(k, wk) || !bytes.Equal(v, wv) || (nullKeys && (k == nil) != (wk == nil)) {
		die("record %d differs: key %q value %q, want key %q value %q", i, k, v, wk, wv)
	}
}

func runSarama() {
	cfg := sarama.NewConfig()
	if *version != "" {
		v, err := sarama.ParseKafkaVersion(*version)
		if err != nil {
			die("%v", err)
		}
		cfg.Version = v
	}
	codecs := map[string]sarama.CompressionCodec{"none": sarama.CompressionNone,
		"gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4}
	c, ok := codecs[*codec]
	if !ok {
		die("unknown codec %s", *codec)
	}
	cfg.Producer.Compression = c
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	if t := tlsConfig(); t != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = t
	}
	addrs := strings.Split(*brokers, ",")
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		die("producer: %v", err)
	}
	stamp := time.Unix(1700000000, 123000000) // millisecond precision survives magic 1
	for i := 0; i < *count; {
		var msgs []*sarama.ProducerMessage
		for ; i < *count && len(msgs) < 100; i++ {
			k, v := record(i)
			m := &sarama.ProducerMessage{Topic: *topic, Partition: 0,
				Value: sarama.ByteEncoder(v), Timestamp: stamp}
			if k != nil {
				m.Key = sarama.ByteEncoder(k)
			}
			msgs = append(msgs, m)
		}
		if err := p.SendMessages(msgs); err != nil {
			die("produce: %v", err)
		}
	}
	p.Close()
	consumer, err := sarama.NewConsumer(addrs, cfg)
	if err != nil {
		die("consumer: %v", err)
	}
	pc, err := consumer.ConsumePartition(*topic, 0, sarama.OffsetOldest)
	if err != nil {
		die("consume: %v", err)
	}
	magic1 := cfg.Version.IsAtLeast(sarama.V0_10_0_0)
	timeout := time.After(60 * time.Second)
	for i := 0; i < *count; i++ {
		select {
		case m := <-pc.Messages():
			if m.Offset != int64(i) {
				die("record %d at offset %d", i, m.Offset)
			}
			check(i, m.Key, m.Value, true)
			if magic1 && !m.Timestamp.Equal(stamp) {
				die("record %d timestamp %v, want %v", i, m.Timestamp, stamp)
			}
		case err := <-pc.Errors():
			die("consume: %v", err)
		case <-timeout:
			die("consumed %d of %d records in 60 s", i, *count)
		}
	}
	pc.Close()
	consumer.Close()
	fmt.Printf("ok %d\n", *count)
}

// readN reads n records with a group Reader (committing each) and checks them as from first.
func readN(dialer *kafka.Dialer, first, n int) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(*brokers, ","),
		GroupID: *group, Topic: *topic, Dialer: dialer, MinBytes: 1, MaxBytes: 1 << 20,
		MaxWait: 200 * time.Millisecond, SessionTimeout: 10 * time.Second})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := first; i < first+n; i++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			die("reader (group %s) after %d of %d records: %v", *group, i-first, n, err)
		}
		if m.Offset != int64(i) {
			die("record %d at offset %d", i, m.Offset)
		}
		check(i, m.Key, m.Value, false)
	}
}

func write(dialer *kafka.Dialer, from, to int) {
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: strings.Split(*brokers, ","),
		Topic: *topic, Dialer: dialer, BatchSize: 100, BatchTimeout: 10 * time.Millisecond})
	var msgs []kafka.Message
	for i := from; i < to; i++ {
		k, v := record(i)
		msgs = append(msgs, kafka.Message{Key: k, Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		die("writer: %v", err)
	}
	w.Close()
}

func runKafkaGo() {
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, TLS: tlsConfig()}
	half := *count / 2
	write(dialer, 0, half)
	readN(dialer, 0, half)
	// a second Reader of the group starts at the committed offset (OffsetFetch v1)
	write(dialer, half, *count)
	readN(dialer, half, *count-half)
	fmt.Printf("ok %d\n", *count)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: kpclient sarama|kafkago [flags]")
	}
	cmd := os.Args[1]
	flag.CommandLine.Parse(os.Args[2:])
	switch cmd {
	case "sarama":
		runSarama()
	case "kafkago":
		runKafkaGo()
	default:
		die("unknown command %s", cmd)
	}
}
