using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Lb.Host.Demo;

/// <summary>A self-signed certificate for localhost written as PEM files, as a user's real ones would be.</summary>
public static class SelfSignedCertificate
{
    public sealed record PemFiles(string CertPath, string KeyPath, string Thumbprint);

    public static PemFiles Write(string directory, string name = "lb")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddIpAddress(System.Net.IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(30));
        Directory.CreateDirectory(directory);
        var certPath = Path.Combine(directory, name + ".crt");
        var keyPath = Path.Combine(directory, name + ".key");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return new PemFiles(certPath, keyPath, certificate.Thumbprint);
    }
}
