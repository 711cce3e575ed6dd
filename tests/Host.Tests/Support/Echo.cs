using System.Text.Json;

namespace Lb.Host.Tests.Support;

/// <summary>What an <c>EchoBackend</c> reported about the request it received.</summary>
public sealed record Echo(string Server, string Method, string Target, IReadOnlyDictionary<string, string> Headers)
{
    public static Echo Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in root.GetProperty("headers").EnumerateObject())
            headers[header.Name] = header.Value.GetString() ?? "";
        return new Echo(
            root.GetProperty("server").GetString() ?? "",
            root.GetProperty("method").GetString() ?? "",
            root.GetProperty("target").GetString() ?? "",
            headers);
    }

    /// <summary>`app1_2` belongs to app `app1`.</summary>
    public string App => Server[..Server.LastIndexOf('_')];

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}
