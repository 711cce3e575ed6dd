using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Lb.Rules;

namespace Lb.Host.Configuration;

/// <summary>
/// The certificate the https listener presents, read per TLS handshake: a reload swaps it whole, so new
/// handshakes get the new certificate and connections already set up keep theirs.
/// </summary>
public sealed class CertificateStore
{
    private SslStreamCertificateContext _current;

    private CertificateStore(SslStreamCertificateContext current) => _current = current;

    /// <summary>Loads the PEM files at start; throws as <see cref="Load"/> reports.</summary>
    public static CertificateStore Open(TlsConfig tls)
    {
        var (context, error) = Load(tls);
        return context is not null ? new CertificateStore(context) : throw new CryptographicException(error);
    }

    public SslStreamCertificateContext Current => Volatile.Read(ref _current);

    /// <summary>The leaf certificate new handshakes present.</summary>
    public X509Certificate2 Leaf => Current.TargetCertificate;

    public void Swap(SslStreamCertificateContext next) => Volatile.Write(ref _current, next);

    /// <summary>The TLS options of one new connection: the current certificate, HTTP/2 then HTTP/1.1 by ALPN.</summary>
    public ValueTask<SslServerAuthenticationOptions> OptionsForHandshake() => ValueTask.FromResult(new SslServerAuthenticationOptions
    {
        ServerCertificateContext = Current,
        ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
    });

    /// <summary>
    /// PEM cert + key as Apache's SSLCertificateFile/KeyFile, the chain file as SSLCertificateChainFile. Returns
    /// the context, or null and why not: unreadable files, no certificate, a key that is not the certificate's.
    /// </summary>
    public static (SslStreamCertificateContext? Context, string Error) Load(TlsConfig tls)
    {
        try
        {
            var leaf = X509Certificate2.CreateFromPemFile(tls.Cert, tls.Key);
            var chain = new X509Certificate2Collection();
            if (tls.Chain is { } chainFile)
                chain.ImportFromPemFile(chainFile.Value);
            // offline: the chain is what the files hold; no fetching of missing intermediates at handshake time.
            return (SslStreamCertificateContext.Create(leaf, chain, offline: true), "");
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return (null, $"cannot load {tls.Cert} with key {tls.Key}: {e.Message}");
        }
    }
}
