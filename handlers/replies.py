"""Replies a handler can return, and their rendering to WeChat's passive-reply XML.

Rendering is hand-written rather than wechatpy's ``replies`` module because wechatpy 1.8.18 puts text
into CDATA sections unescaped: content containing ``]]>`` would end the section early and break the XML.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def cdata(value: str) -> str:
    """Wrap ``value`` in CDATA, splitting any ``]]>`` so the section cannot be closed from inside."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(frozen=True)
class Text:
    content: str
    # Set when ``content`` holds personal fields (a name, a company, a phone): WeChat's retry gets this
    # instead, so that no stored reply holds them (the live answer still goes out in full).
    stand_in: str | None = None


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    picture_url: str = ""
    url: str = ""


@dataclass(frozen=True)
class News:
    """A news (图文) reply. WeChat shows at most one article in reply to a follower's message."""

    articles: tuple[Article, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if len(self.articles) != 1:
            raise ValueError("a news reply to a follower carries exactly one article")


@dataclass(frozen=True)
class Image:
    media_id: str


Reply = Text | News | Image


def _body(reply: Reply) -> tuple[str, str]:
    if isinstance(reply, Text):
        return "text", f"<Content>{cdata(reply.content)}</Content>"
    if isinstance(reply, Image):
        return "image", f"<Image><MediaId>{cdata(reply.media_id)}</MediaId></Image>"
    items = "".join(
        "<item>"
        f"<Title>{cdata(article.title)}</Title><Description>{cdata(article.description)}</Description>"
        f"<PicUrl>{cdata(article.picture_url)}</PicUrl><Url>{cdata(article.url)}</Url>"
        "</item>"
        for article in reply.articles
    )
    return "news", f"<ArticleCount>{len(reply.articles)}</ArticleCount><Articles>{items}</Articles>"


def render_reply(reply: Reply, *, to_user: str, from_user: str, create_time: int) -> str:
    """The passive-reply XML for ``reply``, addressed back to the follower who wrote."""
    msg_type, body = _body(reply)
    return (
        f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata(msg_type)}</MsgType>{body}</xml>"
    )
