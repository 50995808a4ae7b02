import io, json, logging, os
import torch
import torchvision.models as models
import torchvision.transforms as transforms
from PIL import Image

logger = logging.getLogger(__name__)

def model_fn(model_dir):
    model = net()
    model.load_state_dict(torch.load(os.path.join(model_dir, 'model.pth'), map_location='cpu'))
    return model

def input_fn(request_body, content_type='image/jpeg'):
    if content_type == 'image/jpeg':
        return Image.open(io.BytesIO(request_body))
    raise Exception('Requested unsupported ContentType in content_type: {}'.format(content_type))

# inference
def predict_fn(input_object, model):
    logger.info('In predict fn')
    transform = transforms.Compose([
        transforms.Resize((224, 224)),
        transforms.ToTensor(),
        transforms.Normalize(mean=(0,0,0), std=(1,1,1))
    ])
    input_object=transform(input_object)
    with torch.no_grad():
        prediction = model(input_object.unsqueeze(0))
    return prediction
