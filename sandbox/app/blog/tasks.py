"""Stand-in for the guide's publish_scheduled_posts (every 5 minutes): records its run."""

from celery import shared_task
from utils.taskruns import record_run


@shared_task(name="blog.tasks.publish_scheduled_posts")
def publish_scheduled_posts():
    with record_run("blog.tasks.publish_scheduled_posts") as run:
        run.detail = "stand-in: the reference site has no scheduled posts"
