using System.Security.Cryptography;
using System.Text;
using Lb.Rules;

namespace Lb.Host.Stats;

/// <summary>
/// HTTP Basic authentication (RFC 7617) against the `[stats]` user and PBKDF2 password hash. A hash takes tens
/// of milliseconds by design, so the credentials that passed last are remembered as a SHA-256 digest (a page
/// refreshing every few seconds costs one hash, not one per view), and failed attempts hash one at a time so a
/// guessing client cannot take every core.
/// </summary>
public sealed class BasicAuth(StatsConfig config)
{
    private readonly byte[] _user = SHA256.HashData(Encoding.UTF8.GetBytes(config.User));
    private readonly SemaphoreSlim _hashing = new(1, 1);
    private byte[]? _accepted;

    /// <summary>The user name of a request whose credentials are right, else null.</summary>
    public async ValueTask<string?> AuthenticateAsync(HttpContext context)
    {
        if (Credentials(context.Request.Headers.Authorization.ToString()) is not var (user, password))
            return null;
        var userMatches = CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(user)), _user);
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(user + ":" + password));
        if (Volatile.Read(ref _accepted) is { } accepted && CryptographicOperations.FixedTimeEquals(digest, accepted))
            return user;
        await _hashing.WaitAsync(context.RequestAborted);
        bool passwordMatches;
        try
        {
            passwordMatches = Password.Verify(config.PasswordHash, password);
        }
        finally
        {
            _hashing.Release();
        }
        if (!(userMatches && passwordMatches))
            return null;
        Volatile.Write(ref _accepted, digest);
        return user;
    }

    /// <summary>401 with the challenge (RFC 7617 §2, charset UTF-8 per §2.1).</summary>
    public Task ChallengeAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{config.Realm}\", charset=\"UTF-8\"";
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync("401 Unauthorized: the lb stats page needs a user and password\n");
    }

    /// <summary>`Basic base64(user:password)`; the scheme is case-insensitive (RFC 9110 §11.1).</summary>
    private static (string User, string Password)? Credentials(string header)
    {
        const string scheme = "Basic ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return null;
        var encoded = header[scheme.Length..].Trim();
        var buffer = new byte[encoded.Length];
        if (!Convert.TryFromBase64String(encoded, buffer, out var length))
            return null;
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, length);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
        var colon = text.IndexOf(':');
        return colon < 0 ? null : (text[..colon], text[(colon + 1)..]);
    }
}
