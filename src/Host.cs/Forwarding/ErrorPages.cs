using System.Net;
using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>
/// Error pages (HAProxy's `errorfile` set): built-in defaults for 400, 403, 404, 408, 500, 502, 503, 504,
/// each replaceable by an HTML file from the `[errors]` config table, read once at start.
/// </summary>
public sealed class ErrorPages
{
    private static readonly Dictionary<int, string> Titles = new()
    {
        [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found", [408] = "Request Timeout", [413] = "Content Too Large",
        [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable", [504] = "Gateway Timeout",
    };

    private readonly Dictionary<int, string> _custom = new();

    public ErrorPages(LbConfig config)
    {
        foreach (var (status, path) in config.ErrorPages)
            _custom[status] = File.ReadAllText(path);
    }

    public static string Title(int status) => Titles.TryGetValue(status, out var t) ? t : "Error";

    public Task WriteAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsync(_custom.TryGetValue(status, out var page) ? page : DefaultPage(status, reason));
    }

    private static string DefaultPage(int status, string reason)
    {
        var title = $"{status} {Title(status)}";
        return $"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{WebUtility.HtmlEncode(reason)}</p></body></html>\n";
    }
}
