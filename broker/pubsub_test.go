package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

func TestPubSubV3(t *testing.T) {
	_, addr := startServer(t, nil, Options{})
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			log := newMsgLog()
			sub := v3Client(t, addr, fmt.Sprintf("sub%d", qos), true, nil)
			if tok := sub.Subscribe("a/+/c", qos, log.v3Handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			pub := v3Client(t, addr, fmt.Sprintf("pub%d", qos), true, nil)
			for i := 0; i < 10; i++ {
				tok := pub.Publish(fmt.Sprintf("a/%d/c", i), qos, false, fmt.Sprintf("m%d", i))
				if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
			got := log.wait(t, 10, 5*time.Second)
			for i, m := range got {
				if m.Payload != fmt.Sprintf("m%d", i) || m.QoS != qos || m.Topic != fmt.Sprintf("a/%d/c", i) {
					t.Errorf("message %d = %+v", i, m)
				}
			}
		})
	}
}

func TestPubSubV5(t *testing.T) {
	_, addr := startServer(t, nil, Options{})
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			log := newMsgLog()
			sub, _ := v5Client(t, addr, paho.ClientConfig{ClientID: fmt.Sprintf("sub%d", qos),
				OnPublishReceived: []func(paho.PublishReceived) (bool, error){log.v5Handler}}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "x/#", QoS: qos}}}); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			pub, _ := v5Client(t, addr, paho.ClientConfig{ClientID: fmt.Sprintf("pub%d", qos)}, nil)
			for i := 0; i < 10; i++ {
				_, err := pub.Publish(ctx, &paho.Publish{Topic: "x/y", QoS: qos, Payload: []byte(fmt.Sprintf("m%d", i)),
					Properties: &paho.PublishProperties{ContentType: "text/plain", User: paho.UserProperties{{Key: "k", Value: "v"}}}})
				if err != nil {
					t.Fatalf("publish: %v", err)
				}
			}
			got := log.wait(t, 10, 5*time.Second)
			for i, m := range got {
				if m.Payload != fmt.Sprintf("m%d", i) || m.QoS != qos || m.Props.ContentType != "text/plain" || m.Props.User.Get("k") != "v" {
					t.Errorf("message %d = %+v props %+v", i, m, m.Props)
				}
			}
		})
	}
}
