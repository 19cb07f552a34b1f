# 2222/tcp and a UDP range that contains 22 do not expose the SSH service.
FROM gitea/gitea:1.22.0
EXPOSE 3000 2222 10-30/udp
