using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Lb.Host.Demo;
using Lb.Host.Serving;
using Lb.Host.Tests.Support;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// A second lb with the other listener settings: a certificate issued by a CA with `chain` (Apache's
/// SSLCertificateChainFile), `plain_http = "proxy"` (TLS ends before lb) and `redirect_status = 308`.
/// </summary>
public sealed class ListenOptionsTests : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"lb-listen-tests-{Guid.NewGuid():N}");
    private EchoBackend? _backend;
    private ScriptedBackend? _slow;
    private LbServer? _server;
    private int _httpsPort;
    private int _httpPort;
    private string _leafThumbprint = "";
    private string _intermediateThumbprint = "";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        WriteCaAndLeaf();
        _backend = await EchoBackend.StartAsync("web_1");
        _slow = await ScriptedBackend.StartAsync();
        _httpsPort = FreePort.Next();
        _httpPort = FreePort.Next();
        var config = Path.Combine(_directory, "lb.toml");
        await File.WriteAllTextAsync(config, $"""
            [listen]
            http = "127.0.0.1:{_httpPort}"
            https = "127.0.0.1:{_httpsPort}"
            plain_http = "proxy"
            redirect_status = 308
            [tls]
            cert = "pem/leaf.crt"
            key = "pem/leaf.key"
            chain = "pem/chain.crt"
            [defaults]
            timeout_server = "3s"
            [apps.web]
            servers = [ {"{"} name = "web_1", address = "{_backend.Address}" {"}"} ]
            [apps.slow]
            servers = [ {"{"} name = "slow_1", address = "{_slow.Address}" {"}"} ]
            """);
        // timeout_server is 3 s, not 1 s: the first request of a test run JITs Kestrel, YARP and HttpClient in this
        // process, and on a busy CI machine it once took 1.4 s and got a 504 (Plain_http_in_proxy_mode…).
        var load = ConfigFile.Load(config);
        Assert.True(load.IsValid, string.Join("; ", load.Errors.Select(e => e.ToString())));
        _server = await LbServer.StartAsync(load.Config, logging => logging.ClearProviders());
    }

    /// <summary>
    /// Root CA → intermediate → leaf for 127.0.0.1; the chain file holds the intermediate and the root, as a
    /// CA's bundle usually does.
    /// </summary>
    private void WriteCaAndLeaf()
    {
        var pem = Path.Combine(_directory, "pem");
        Directory.CreateDirectory(pem);
        // One clock reading for the whole chain: with two, a second boundary between them made the leaf outlive
        // its intermediate by a second and CertificateRequest.Create threw (seen twice in full runs).
        var now = DateTimeOffset.UtcNow;
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var root = CaRequest("CN=lb test root", rootKey)
            .CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));
        using var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var intermediatePublic = CaRequest("CN=lb test intermediate", intermediateKey)
            .Create(root, now.AddMinutes(-4), now.AddDays(1), [5, 6, 7, 8]);
        using var intermediate = intermediatePublic.CopyWithPrivateKey(intermediateKey);

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=localhost", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var leaf = leafRequest.Create(intermediate, now.AddMinutes(-1), now.AddDays(1), [1, 2, 3, 4]);

        File.WriteAllText(Path.Combine(pem, "leaf.crt"), leaf.ExportCertificatePem());
        File.WriteAllText(Path.Combine(pem, "leaf.key"), leafKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(pem, "chain.crt"), intermediate.ExportCertificatePem() + "\n" + root.ExportCertificatePem() + "\n");
        _leafThumbprint = leaf.Thumbprint;
        _intermediateThumbprint = intermediate.Thumbprint;
    }

    private static CertificateRequest CaRequest(string subject, ECDsa key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request;
    }

    [Fact]
    public async Task The_chain_file_intermediate_is_sent_after_the_certificate()
    {
        var sent = new List<string>();
        using var tcp = new TcpClient();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await tcp.ConnectAsync(IPAddress.Loopback, _httpsPort, cancel.Token);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
            {
                // The certificates the server sent beyond its own are handed to the client in ExtraStore.
                sent.AddRange(chain?.ChainPolicy.ExtraStore.Select(c => c.Thumbprint) ?? []);
                return certificate?.GetCertHashString() == _leafThumbprint;
            },
        }, cancel.Token);

        // The root may be left out (RFC 8446 §4.4.2: it is assumed to be known); the intermediate may not.
        Assert.Contains(_intermediateThumbprint, sent);
    }

    [Fact]
    public async Task Plain_http_in_proxy_mode_is_forwarded_with_proto_http()
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false });

        var response = await client.GetAsync($"http://127.0.0.1:{_httpPort}/web/x?y=1");
        var echo = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal("web_1", echo.Server);
        Assert.Equal("/x?y=1", echo.Target);
        Assert.Equal("http", echo.Header("X-Forwarded-Proto"));
        Assert.Equal("/web", echo.Header("X-Forwarded-Prefix"));
    }

    [Fact]
    public async Task Redirect_status_is_the_configured_one()
    {
        var response = await RawHttp.GetAsync(_httpsPort, "/web?a=1", _leafThumbprint);

        Assert.Equal(308, response.Status);
        Assert.EndsWith("/web/?a=1", response.Header("Location"));
    }

    [Fact]
    public async Task Location_rewrites_use_the_scheme_the_client_used()
    {
        var response = await RawHttp.GetAsync(_httpPort, "/web/redirect", tlsThumbprint: null);

        Assert.Equal(302, response.Status);
        Assert.Equal($"http://127.0.0.1:{_httpPort}/web/welcome", response.Header("Location"));
    }

    /// <summary>HAProxy's `srvtimeout`: a server silent for longer than timeout_server gets a 504 page.</summary>
    [Fact]
    public async Task A_server_slower_than_timeout_server_gives_a_504_page()
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var response = await RawHttp.GetAsync(_httpsPort, "/slow/respond?delay=8000", _leafThumbprint);

        Assert.Equal(504, response.Status);
        Assert.Contains("504 Gateway Timeout", response.Body);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(2.9), TimeSpan.FromSeconds(7));
    }

    [Fact]
    public async Task A_server_faster_than_timeout_server_is_answered()
    {
        var response = await RawHttp.GetAsync(_httpsPort, "/slow/respond?delay=100", _leafThumbprint);

        Assert.Equal(200, response.Status);
        Assert.Equal("scripted", response.Body);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        if (_backend is not null)
            await _backend.DisposeAsync();
        if (_slow is not null)
            await _slow.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
