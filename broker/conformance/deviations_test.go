package conformance

// mosquittoDeviations lists where mosquitto 2.0.11 (the reference broker)
// is known to differ from the spec or from a SHOULD that Sluice follows.
// Keys are full test names; each is skipped for mosquitto only. Sluice
// has no such list: it must pass every test.
var mosquittoDeviations = map[string]string{
	"MQTT-3.1.2-24 (3.1.1) silent client is closed after 1.5x keepalive":                                         keepaliveTimer,
	"MQTT-3.1.2-22 (5.0) silent client is closed after 1.5x keepalive":                                           keepaliveTimer,
	"MQTT-3.1.2-22 §4.13 (5.0) keepalive timeout sends DISCONNECT 0x8D before the close":                         keepaliveTimer,
	"§3.3.1.3 (5.0) a new shared subscription gets no retained messages":                                         "mosquitto sends retained messages to a new shared subscription; the spec sends them for new non-shared subscriptions only",
	"MQTT-3.1.4-3 (5.0) session takeover sends DISCONNECT 0x8E to the existing connection":                       "mosquitto 2.0.11 closes the taken-over connection without sending DISCONNECT 0x8E",
	"MQTT-4.8.2-1 MQTT-4.8.2-2 (5.0) invalid shared filter $share/g is refused":                                  "mosquitto grants $share/g as an ordinary (non-shared) filter",
	"MQTT-4.8.2-1 MQTT-4.8.2-2 (5.0) invalid shared filter $share//x is refused":                                 "mosquitto grants $share//x (empty ShareName) as an ordinary filter",
	"MQTT-3.8.3-4 (5.0) no local on a shared subscription closes the connection":                                 "mosquitto 2.0.11 grants a shared subscription with No Local set",
	"MQTT-3.3.2-14 (5.0) a response topic with wildcards closes the connection":                                  "mosquitto 2.0.11 accepts a Response Topic containing wildcards",
	"MQTT-3.3.4-6 (5.0) a PUBLISH from a client carrying a subscription identifier closes the connection":        "mosquitto 2.0.11 ignores a Subscription Identifier in a client PUBLISH",
	"MQTT-3.14.0-1 §4.13 (5.0) server shutdown sends DISCONNECT 0x8B":                                            "mosquitto 2.0.11 closes connections on SIGTERM without DISCONNECT 0x8B",
	"MQTT-3.3.2-8 (5.0) topic alias 0 gets DISCONNECT 0x94":                                                      "mosquitto 2.0.11 answers topic alias 0 with DISCONNECT 0x81 (malformed packet)",
	"MQTT-3.3.4-7 §3.3.4 (5.0) exceeding the server's receive maximum gets DISCONNECT 0x93":                      "mosquitto 2.0.11 answers the excess QoS 2 PUBLISH with PUBREC 0x97 (quota exceeded) and keeps the connection",
	"MQTT-3.3.4-9 MQTT-4.9.0-2 MQTT-3.3.4-10 MQTT-4.9.0-3 (5.0) the server honours the client's receive maximum": "mosquitto 2.0.11 sent 3 unacknowledged QoS 1 messages to a client with receive maximum 2 once the first window was acknowledged",
	"MQTT-4.13.1-1 MQTT-3.1.0-2 (5.0) a protocol error gets DISCONNECT 0x82 before the close":                    "mosquitto 2.0.11 closes on a second CONNECT without sending DISCONNECT 0x82",
	"MQTT-2.1.3-1 (5.0) PINGREQ with fixed header flags 0001 closes the connection":                              lenientHeader,
	"MQTT-2.2.2-2 (3.1.1) PINGREQ with fixed header flags 0001 closes the connection":                            lenientHeader,
	"MQTT-2.2.2-2 (3.1.1) PUBACK with fixed header flags 0010 closes the connection":                             lenientHeader,
	"MQTT-2.1.3-1 (5.0) PUBACK with fixed header flags 0010 closes the connection":                               lenientHeader,
	"MQTT-4.13.1-1 (5.0) PINGREQ with a body closes the connection":                                              lenientHeader,
	"MQTT-4.8.0-1 (3.1.1) PINGREQ with a body closes the connection":                                             lenientHeader,
	"MQTT-4.8.0-1 (3.1.1) PINGRESP sent by a client closes the connection":                                       ignoresServerPackets,
	"MQTT-4.13.1-1 (5.0) PINGRESP sent by a client closes the connection":                                        ignoresServerPackets,
	"MQTT-4.8.0-1 (3.1.1) SUBACK sent by a client closes the connection":                                         ignoresServerPackets,
	"MQTT-4.13.1-1 (5.0) SUBACK sent by a client closes the connection":                                          ignoresServerPackets,
	"§3.1.4 (3.1.1) a half-sent CONNECT is closed after the connect timeout":                                     noConnectTimeout,
	"§3.1.4 (5.0) a half-sent CONNECT is closed after the connect timeout":                                       noConnectTimeout,
	"MQTT-4.3.3-11 (5.0) PUBREL for an unknown packet id gets PUBCOMP 0x92":                                      "mosquitto answers PUBCOMP 0x00 (success) instead of 0x92 (packet identifier not found)",
}

const keepaliveTimer = "mosquitto 2.0 checks keepalives on a ~5 s timer: with keepalive 1 s it closed the connection after ~5.2 s, not within 1.5 s"

const (
	lenientHeader        = "mosquitto 2.0.11 does not check PINGREQ/PUBACK fixed header flags or an empty PINGREQ body: it answers or ignores the packet"
	ignoresServerPackets = "mosquitto 2.0.11 silently ignores server-to-client packets (SUBACK, PINGRESP) sent by a client"
	noConnectTimeout     = "mosquitto 2.0.11 keeps a connection with a half-sent CONNECT open (no connect timeout observed within 6 s)"
)
