using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Lb.Rules;

namespace Lb.Host.Serving;

/// <summary>Reads a config file from disk and hands its text to the rules, which validate it.</summary>
public static class ConfigFile
{
    public static ConfigLoad Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var error = new ConfigError("file", 0, 0, $"cannot read {path}: {e.Message}", "check the path given with -c");
            return new ConfigLoad(null, [error]);
        }
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return Rules.Rules.LoadConfig(text, baseDir, file => File.Exists(file), CheckTls, File.ReadAllText);
    }

    /// <summary>
    /// Loads the PEM files as `lb run` will, so `lb check` refuses what could not serve: a cert file without a
    /// certificate, a key that is not the certificate's, a chain file without certificates.
    /// </summary>
    public static (string, string)[] CheckTls(TlsConfig tls)
    {
        var problems = new List<(string, string)>();
        try
        {
            using var leaf = X509Certificate2.CreateFromPem(File.ReadAllText(tls.Cert));
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            problems.Add(("cert", $"{tls.Cert} holds no usable PEM certificate ({e.Message})"));
        }
        if (problems.Count == 0)
        {
            try
            {
                using var withKey = X509Certificate2.CreateFromPemFile(tls.Cert, tls.Key);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                problems.Add(("key", $"{tls.Key} is not the private key of {tls.Cert} ({e.Message})"));
            }
        }
        if (tls.Chain is { } chain && CountCertificates(chain.Value) == 0)
            problems.Add(("chain", $"{chain.Value} holds no PEM certificate"));
        return problems.ToArray();
    }

    private static int CountCertificates(string path)
    {
        try
        {
            var collection = new X509Certificate2Collection();
            collection.ImportFromPemFile(path);
            return collection.Count;
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Errors as `FILE:LINE:COL: keyword: message (hint: ...)`, the form editors jump to.</summary>
    public static void PrintErrors(string path, ConfigLoad load, TextWriter output)
    {
        foreach (var error in load.Errors)
            output.WriteLine($"{path}:{error}");
        output.WriteLine($"{load.Errors.Length} error(s) in {path}");
    }
}
