using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Lb.Host.Tests.Support;

/// <summary>
/// Clients that trust exactly one certificate, by thumbprint: the self-signed one the test wrote.
/// Anything else (another certificate, none at all) fails the handshake.
/// </summary>
public static class PinnedTls
{
    public static RemoteCertificateValidationCallback Accept(string thumbprint) =>
        (_, certificate, _, _) => certificate is not null &&
            string.Equals(certificate.GetCertHashString(), thumbprint, StringComparison.OrdinalIgnoreCase);

    public static HttpClient Client(string thumbprint, Version? version = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            SslOptions = { RemoteCertificateValidationCallback = Accept(thumbprint) },
        };
        var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };
        if (version is not null)
        {
            client.DefaultRequestVersion = version;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }
        return client;
    }

    /// <summary>The SHA-1 thumbprint of a PEM certificate file, as <see cref="X509Certificate2.Thumbprint"/>.</summary>
    public static string ThumbprintOfPem(string certPath)
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certPath));
        return certificate.Thumbprint;
    }
}
