using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>The https listener: HTTP/2 by ALPN, TLS 1.2 and 1.3 accepted, TLS 1.1 refused.</summary>
[Collection(LbSiteCollection.Name)]
public sealed class TlsTests(LbSite site)
{
    [Fact]
    public async Task Http2_over_tls_is_forwarded()
    {
        using var client = PinnedTls.Client(site.Thumbprint, HttpVersion.Version20);

        var response = await client.GetAsync(site.Https("/app1/h2?x=1"));
        var echo = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("app1", echo.App);
        Assert.Equal("/h2?x=1", echo.Target);
        Assert.Equal($"127.0.0.1:{site.HttpsPort}", echo.Header("X-Forwarded-Host"));
    }

    [Fact]
    public async Task Http2_redirects_and_404s_are_decided_like_http1()
    {
        using var client = PinnedTls.Client(site.Thumbprint, HttpVersion.Version20);

        var redirect = await client.GetAsync(site.Https("/app3?q=1"));
        var missing = await client.GetAsync(site.Https("/app10/"));

        Assert.Equal(HttpStatusCode.Found, redirect.StatusCode);
        Assert.EndsWith("/app3/?q=1", redirect.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task Tls_1_2_and_1_3_are_accepted(SslProtocols protocol)
    {
        var negotiated = await HandshakeAsync(protocol);

        Assert.Equal(protocol, negotiated);
    }

    /// <summary>
    /// The client's own OpenSSL may refuse to offer TLS 1.1 at all (Debian's default security level), so a
    /// failed SslStream handshake would prove nothing. This test writes the ClientHello bytes itself
    /// (RFC 4346 §7.4.1.2) and reads what the server answers; the same hello with version 1.2 is the control
    /// that shows the hand-made hello is one the server would otherwise accept.
    /// </summary>
    [Fact]
    public async Task Tls_1_1_is_refused_by_the_server()
    {
        var control = await ServerAnswerAsync(RawClientHello(0x0303));
        Assert.True(control.IsServerHello, $"the TLS 1.2 control hello was not accepted: {control}");
        Assert.Equal(0x0303, control.ServerVersion);

        var answer = await ServerAnswerAsync(RawClientHello(0x0302));

        Assert.False(answer.IsServerHello, $"the server agreed to TLS 1.1: {answer}");
    }

    [Fact]
    public async Task Tls_1_1_from_SslStream_does_not_connect()
    {
        // Whether the refusal comes from the server or the client's OpenSSL cannot be told apart here; the
        // raw-hello test above shows it is the server. This one guards against a silent success.
#pragma warning disable SYSLIB0039 // TLS 1.1 is obsolete: that is what is being tested.
        var attempt = HandshakeAsync(SslProtocols.Tls11);
#pragma warning restore SYSLIB0039
        var error = await Record.ExceptionAsync(() => attempt);

        Assert.True(error is AuthenticationException or IOException, $"TLS 1.1 handshake succeeded or failed oddly: {error}");
    }

    private async Task<SslProtocols> HandshakeAsync(SslProtocols protocol)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, site.HttpsPort, cancel.Token);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocol,
            RemoteCertificateValidationCallback = PinnedTls.Accept(site.Thumbprint),
        }, cancel.Token);
        return tls.SslProtocol;
    }

    private sealed record ServerAnswer(byte[] Bytes)
    {
        // Record type 22 (handshake), then handshake type 2 (ServerHello) after the 5-byte record header.
        public bool IsServerHello => Bytes.Length >= 11 && Bytes[0] == 22 && Bytes[5] == 2;
        public int ServerVersion => IsServerHello ? (Bytes[9] << 8) | Bytes[10] : 0;
        public override string ToString() => Bytes.Length == 0 ? "connection closed" : Convert.ToHexString(Bytes.AsSpan(0, Math.Min(Bytes.Length, 16)));
    }

    private async Task<ServerAnswer> ServerAnswerAsync(byte[] hello)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, site.HttpsPort, cancel.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(hello, cancel.Token);
        var buffer = new byte[64];
        var read = 0;
        try
        {
            while (read < 11)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), cancel.Token);
                if (n == 0)
                    break;
                read += n;
            }
        }
        catch (IOException)
        {
            // A reset is a refusal too.
        }
        return new ServerAnswer(buffer[..read]);
    }

    /// <summary>A minimal ClientHello offering ECDHE-ECDSA suites (the test certificate is P-256).</summary>
    private static byte[] RawClientHello(ushort version)
    {
        static byte[] U16(int v) => [(byte)(v >> 8), (byte)v];
        static byte[] U24(int v) => [(byte)(v >> 16), (byte)(v >> 8), (byte)v];
        static byte[] Extension(int type, byte[] data) => [.. U16(type), .. U16(data.Length), .. data];

        byte[] host = "localhost"u8.ToArray();
        byte[] serverName = [.. U16(host.Length + 3), 0, .. U16(host.Length), .. host];
        byte[] groups = [.. U16(4), .. U16(0x0017), .. U16(0x001d)]; // secp256r1, x25519
        byte[] pointFormats = [1, 0]; // uncompressed
        // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ecdsa_sha1 (RFC 8446 §4.2.3)
        byte[] signatures = [.. U16(8), .. U16(0x0403), .. U16(0x0804), .. U16(0x0401), .. U16(0x0203)];
        byte[] extensions =
        [
            .. Extension(0x0000, serverName), .. Extension(0x000a, groups), .. Extension(0x000b, pointFormats),
            .. (version >= 0x0303 ? Extension(0x000d, signatures) : []), .. Extension(0xff01, [0]),
        ];
        // ECDHE-ECDSA-AES128-GCM-SHA256, -AES256-GCM-SHA384 (TLS 1.2 only), -AES128-SHA, -AES256-SHA
        byte[] suites = [.. U16(0xc02b), .. U16(0xc02c), .. U16(0xc009), .. U16(0xc00a)];
        byte[] body =
        [
            .. U16(version), .. RandomNumberGenerator.GetBytes(32), 0,
            .. U16(suites.Length), .. suites, 1, 0, .. U16(extensions.Length), .. extensions,
        ];
        byte[] handshake = [1, .. U24(body.Length), .. body];
        return [22, 3, 1, .. U16(handshake.Length), .. handshake];
    }
}
