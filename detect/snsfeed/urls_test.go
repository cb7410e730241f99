package snsfeed

import "testing"

func TestIsSNSHost(t *testing.T) {
	for host, want := range map[string]bool{
		"sns.us-east-1.amazonaws.com":          true,
		"sns.eu-central-1.amazonaws.com":       true,
		"sns.ap-southeast-2.amazonaws.com":     true,
		"sns.il-central-1.amazonaws.com":       true,
		"sns.us-gov-west-1.amazonaws.com":      true,
		"sns.us-gov-east-1.amazonaws.com":      true,
		"sns.cn-north-1.amazonaws.com.cn":      true,
		"sns.cn-northwest-1.amazonaws.com.cn":  true,
		"sns.cn-north-1.amazonaws.com":         false, // China is .com.cn
		"sns.us-east-1.amazonaws.com.cn":       false,
		"sns.amazonaws.com":                    false,
		"sqs.us-east-1.amazonaws.com":          false,
		"sns.us-east-1.amazonaws.com.evil.com": false,
		"evilsns.us-east-1.amazonaws.com":      false,
		"sns.us-east-1.evil.amazonaws.com":     false,
		"sns.evil.com":                         false,
		"sns.us-east.amazonaws.com":            false,
		"sns.us-gov-1.amazonaws.com":           false,
		"sns.us-east-123.amazonaws.com":        false,
		"sns.us-iso-east-1.amazonaws.com":      false,
		"sns.x-east-1.amazonaws.com":           false,
		"sns..amazonaws.com":                   false,
		"":                                     false,
	} {
		if got := isSNSHost(host); got != want {
			t.Errorf("isSNSHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckURLs(t *testing.T) {
	prod, err := minimal().settings()
	if err != nil {
		t.Fatal(err)
	}
	emuCfg := minimal()
	emuCfg.Emulator = &Emulator{Hosts: []string{"127.0.0.1:4100"}, AllowHTTP: true}
	emu, err := emuCfg.settings()
	if err != nil {
		t.Fatal(err)
	}
	certs := []struct {
		url        string
		prod, emul bool
	}{
		{testCertURL, true, true},
		{"https://SNS.US-WEST-2.AMAZONAWS.COM/SimpleNotificationService-1.pem", true, true},
		{"http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem", false, false},
		{"https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-1.pem", false, false},
		{"https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem?x=1", false, false},
		{"https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem#f", false, false},
		{"https://sns.us-west-2.amazonaws.com/cert.txt", false, false},
		{"https://u:p@sns.us-west-2.amazonaws.com/c.pem", false, false},
		{"//sns.us-west-2.amazonaws.com/c.pem", false, false},
		{"https:sns.us-west-2.amazonaws.com/c.pem", false, false},
		{"http://127.0.0.1:4100/SimpleNotificationService/1.pem", false, true},
		{"https://127.0.0.1:4100/SimpleNotificationService/1.pem", false, true},
		{"http://127.0.0.1:4101/SimpleNotificationService/1.pem", false, false},
		{"http://127.0.0.1/SimpleNotificationService/1.pem", false, false},
		{"ftp://127.0.0.1:4100/c.pem", false, false},
		{"", false, false},
	}
	for _, c := range certs {
		if _, err := prod.checkCertURL(c.url); (err == nil) != c.prod {
			got := err == nil
			t.Errorf("production checkCertURL(%q) ok = %v, want %v", c.url, got, c.prod)
		}
		if _, err := emu.checkCertURL(c.url); (err == nil) != c.emul {
			got := err == nil
			t.Errorf("emulator checkCertURL(%q) ok = %v, want %v", c.url, got, c.emul)
		}
	}
	subs := []struct {
		url  string
		want bool
	}{
		{testSubURL, true},
		{"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:other&Token=1", false},
		{"https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&TopicArn=" + testTopic + "&Token=1", false},
		{"https://evil.example/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=1", false},
		{"http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=1", false},
		{"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=1;x", false},
	}
	for _, c := range subs {
		if got := prod.checkSubscribeURL(c.url, testTopic) == nil; got != c.want {
			t.Errorf("checkSubscribeURL(%q) ok = %v, want %v", c.url, got, c.want)
		}
	}
}

func TestRedactURLDropsToken(t *testing.T) {
	if got := redactURL(testSubURL); got != "https://sns.us-west-2.amazonaws.com/" {
		t.Fatalf("redactURL = %q", got)
	}
}
